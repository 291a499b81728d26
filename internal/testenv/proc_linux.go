package testenv

import "syscall"

// sysProcAttr puts moto in its own process group, so that stopping it also stops anything it
// spawned, and asks Linux to kill it when the thread that started it (kept alive for moto's
// whole life, see launch) dies with the test binary, even on a crash or a test timeout.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills moto's process group.
func killGroup(pid int) error {
	return syscall.Kill(-pid, syscall.SIGKILL)
}
