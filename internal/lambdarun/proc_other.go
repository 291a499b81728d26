//go:build !linux

package lambdarun

import "syscall"

// procAttr puts the emulator in its own process group so Close stops the function too.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// descendants is empty where /proc is not: Kill reaches the emulator's process group only.
func descendants(int) []int { return nil }
