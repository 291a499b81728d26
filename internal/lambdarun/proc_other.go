//go:build !linux

package lambdarun

import "syscall"

// procAttr puts the emulator in its own process group so Close stops the function too.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
