// Package pdsimtest runs the Pipedrive simulator (internal/pdsim) on a loopback port for the
// length of a test. It is the only part of the simulator that imports testing, so commands
// that embed the simulator (cmd/pdsim, cmd/pdlocal) do not link it.
package pdsimtest

import (
	"net/http/httptest"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
)

// TestServer is a Server listening on a loopback port for the duration of a test.
type TestServer struct {
	*pdsim.Server
	// URL is the base URL (http://127.0.0.1:port); api_domain in token responses equals it.
	URL string
	// HTTP is the underlying httptest server (its Client() trusts it).
	HTTP *httptest.Server
}

// New starts a Server built from cfg on 127.0.0.1, sets its base URL, and registers
// cleanup (releasing hung requests, then closing the server) with t.
func New(t testing.TB, cfg pdsim.Config) *TestServer {
	t.Helper()
	s := pdsim.New(cfg)
	hs := httptest.NewServer(s)
	s.SetBaseURL(hs.URL)
	t.Cleanup(func() {
		s.ReleaseHung()
		hs.Close()
	})
	return &TestServer{Server: s, URL: hs.URL, HTTP: hs}
}

// AuthURL is the authorize endpoint of the test server.
func (ts *TestServer) AuthURL() string { return ts.URL + "/oauth/authorize" }

// TokenURL is the token endpoint of the test server.
func (ts *TestServer) TokenURL() string { return ts.URL + "/oauth/token" }

// RevokeURL is the revoke endpoint of the test server.
func (ts *TestServer) RevokeURL() string { return ts.URL + "/oauth/revoke" }
