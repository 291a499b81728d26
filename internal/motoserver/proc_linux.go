package motoserver

import "syscall"

// procAttr puts the moto server in its own process group (so Close stops the function too) and
// asks the kernel to kill it if this process dies first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
