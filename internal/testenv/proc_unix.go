//go:build unix && !linux

package testenv

import "syscall"

// sysProcAttr puts moto in its own process group, so that stopping it also stops anything it
// spawned. Only Linux can tie moto's life to the test binary's (Pdeathsig): elsewhere a test
// binary that crashes leaves moto running, so run tests through TestMain with Main.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills moto's process group.
func killGroup(pid int) error {
	return syscall.Kill(-pid, syscall.SIGKILL)
}
