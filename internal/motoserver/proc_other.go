//go:build !linux

package motoserver

import "syscall"

// procAttr puts the moto server in its own process group so Close stops the function too.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
