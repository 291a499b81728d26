//go:build unix && !linux

package motoserver

import "syscall"

// sysProcAttr puts moto in its own process group, so that Close also stops anything it
// spawned. Only Linux can tie moto's life to this process's (Pdeathsig): elsewhere a process
// that crashes before Close leaves moto running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends sig to moto's process group.
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}
