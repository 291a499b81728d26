package pdsim

import (
	"net/http/httptest"
	"testing"
)

// TestServer is a Server listening on a loopback port for the duration of a test.
type TestServer struct {
	*Server
	// URL is the base URL (http://127.0.0.1:port); api_domain in token responses equals it.
	URL string
	// HTTP is the underlying httptest server (its Client() trusts it).
	HTTP *httptest.Server
}

// NewTestServer starts a Server built from cfg on 127.0.0.1, sets its base URL, and registers
// cleanup (releasing hung requests, then closing the server) with t.
func NewTestServer(t testing.TB, cfg Config) *TestServer {
	t.Helper()
	s := New(cfg)
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
