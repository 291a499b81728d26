//go:build !unix

package motoserver

import (
	"os"
	"syscall"
)

// sysProcAttr has nothing to add outside Unix.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// signalGroup kills the moto process itself, whatever sig: there are no process groups to
// signal outside Unix.
func signalGroup(pid int, _ syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
