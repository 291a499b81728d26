//go:build !unix

package testenv

import (
	"os"
	"syscall"
)

// sysProcAttr has nothing to add outside Unix.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// killGroup kills the moto process itself.
func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
