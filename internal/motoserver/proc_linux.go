package motoserver

import "syscall"

// sysProcAttr puts moto in its own process group, so that Close also stops anything it
// spawned, and asks Linux to kill it when the thread that started it (kept alive for moto's
// whole life, see launch) dies with this process, even on a crash or a test timeout.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends sig to moto's process group.
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}
