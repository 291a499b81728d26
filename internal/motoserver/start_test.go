package motoserver

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// takenPort returns a port that a listener holds until the test ends.
func takenPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// TestStartRetriesAPortTakenAfterPicking hands Start a port taken between picking and
// binding, as a parallel process can: moto exits, and Start must try a new port.
func TestStartRetriesAPortTakenAfterPicking(t *testing.T) {
	taken := takenPort(t)
	picks := 0
	pick := func() (int, error) {
		picks++
		if picks == 1 {
			return taken, nil
		}
		return bindable(0)
	}
	s, err := start(context.Background(), Options{}, pick)
	if err != nil {
		t.Fatalf("start with the first port taken = %v, want a server on the next", err)
	}
	t.Cleanup(func() { s.Close(); os.Remove(s.LogFile) })
	if picks != 2 {
		t.Errorf("start picked %d ports, want 2", picks)
	}
	if s.URL == "http://127.0.0.1:"+strconv.Itoa(taken) {
		t.Errorf("URL = %s, the taken port", s.URL)
	}
	if tail := s.LogTail(logTailBytes); !strings.Contains(tail, "in use") {
		t.Errorf("LogTail = %q, want the first moto's complaint that its port is in use", tail)
	}
}

// TestStartGivesUpAfterThreeTakenPorts: the error says moto exited, how to install it, and
// what moto said, and the log is kept.
func TestStartGivesUpAfterThreeTakenPorts(t *testing.T) {
	taken := takenPort(t)
	picks := 0
	pick := func() (int, error) { picks++; return taken, nil }
	s, err := start(context.Background(), Options{}, pick)
	if err == nil {
		s.Close()
		t.Fatalf("start with every port taken = nil error, want errExited")
	}
	if !errors.Is(err, errExited) {
		t.Errorf("start with every port taken = %v, want errExited", err)
	}
	if picks != portTries {
		t.Errorf("start picked %d ports, want %d", picks, portTries)
	}
	for _, want := range []string{InstallHint, "--- tail of ", "in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start error = %q, want it to contain %q", err, want)
		}
	}
	_, path, _ := strings.Cut(err.Error(), "--- tail of ")
	path, _, _ = strings.Cut(path, " ---")
	if _, statErr := os.Stat(path); statErr != nil {
		t.Errorf("log %q named in the error: %v, want it kept", path, statErr)
	}
	os.Remove(path)
}

// TestTakenPortIsALoudError asks for a port something else listens on: Start must refuse at
// once rather than take the other server's answers for moto's.
func TestTakenPortIsALoudError(t *testing.T) {
	port := takenPort(t)
	s, err := Start(context.Background(), Options{Port: port})
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Start on taken port %d = %v, want EADDRINUSE", port, err)
	}
}
