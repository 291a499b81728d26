package testenv

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RoundServer is an httptest server that holds each request until n requests are in flight
// (one round), then answers them all with handle, and counts the TCP connections clients
// open (its ConnState's StateNew): what a transport's connection reuse is measured by.
type RoundServer struct {
	*httptest.Server
	// NewConns is how many connections clients opened.
	NewConns atomic.Int64

	mu      sync.Mutex
	cond    *sync.Cond
	arrived int
}

// NewRoundServer starts a RoundServer of rounds of n concurrent requests; a round that does
// not fill within 10 s is answered anyway (and the caller's count then shows it). It is
// closed when t ends.
func NewRoundServer(t testing.TB, n int, handle http.HandlerFunc) *RoundServer {
	t.Helper()
	s := &RoundServer{}
	s.cond = sync.NewCond(&s.mu)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.arrived++
		full := ((s.arrived + n - 1) / n) * n // the count that fills this request's round
		timer := time.AfterFunc(10*time.Second, func() { s.mu.Lock(); s.arrived = max(s.arrived, full); s.cond.Broadcast(); s.mu.Unlock() })
		for s.arrived < full {
			s.cond.Wait()
		}
		timer.Stop()
		s.cond.Broadcast()
		s.mu.Unlock()
		handle(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.NewConns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}
