package pdsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// t0 is the fake clock's start: a Tuesday, mid-morning UTC.
var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// testServer is a Server on a loopback port (pdsimtest.TestServer, which this internal test
// package cannot import without a cycle).
type testServer struct {
	*Server
	URL string
}

// sim is a test server on a fake clock.
type sim struct {
	*testServer
	clock *Clock
	t     *testing.T
}

// newSim starts a simulator whose Now is a fake clock at t0.
func newSim(t *testing.T, cfg Config) *sim {
	t.Helper()
	clock := NewClock(t0)
	cfg.Now = clock.Now
	s := New(cfg)
	hs := httptest.NewServer(s)
	s.SetBaseURL(hs.URL)
	t.Cleanup(func() {
		s.ReleaseHung()
		hs.Close()
	})
	return &sim{testServer: &testServer{Server: s, URL: hs.URL}, clock: clock, t: t}
}

// response is a read HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic map.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode body %q: %v", r.body, err)
	}
	return m
}

// noRedirect is a client that returns redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends req and reads the whole response, failing the test on a transport error.
func do(t *testing.T, req *http.Request) response {
	t.Helper()
	r, err := send(req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send sends req and reads the whole response; safe to call from any goroutine.
func send(req *http.Request) (response, error) {
	resp, err := noRedirect.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// formRequest builds a POST of form to u with Basic id:secret; safe in any goroutine.
func formRequest(u string, form url.Values, id, secret string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	return req
}

// apiRequest builds an API request with a bearer token and optional JSON body; safe in any
// goroutine.
func apiRequest(method, u, token string, body any) *http.Request {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// postForm posts form to path with the configured Basic credentials.
func (s *sim) postForm(path string, form url.Values) response {
	s.t.Helper()
	return s.postFormAuth(path, form, s.cfg.ClientID, s.cfg.ClientSecret)
}

// postFormAuth posts form to path with Basic id:secret (none when both are empty).
func (s *sim) postFormAuth(path string, form url.Values, id, secret string) response {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" || secret != "" {
		req.SetBasicAuth(id, secret)
	}
	return do(s.t, req)
}

// exchangeCode exchanges code and fails the test unless it succeeds.
func (s *sim) exchangeCode(code string) Token {
	s.t.Helper()
	resp := s.postForm("/oauth/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.cfg.RedirectURI},
	})
	return s.token(resp)
}

// refreshToken refreshes and fails the test unless it succeeds.
func (s *sim) refreshToken(rt string) Token {
	s.t.Helper()
	return s.token(s.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}))
}

// token decodes a successful token response.
func (s *sim) token(resp response) Token {
	s.t.Helper()
	if resp.status != http.StatusOK {
		s.t.Fatalf("token status = %d (%s), want 200", resp.status, resp.body)
	}
	var tok Token
	if err := json.Unmarshal(resp.body, &tok); err != nil {
		s.t.Fatalf("decode token: %v", err)
	}
	return tok
}

// install runs the code flow for the acting user and returns the tokens.
func (s *sim) install() Token {
	s.t.Helper()
	return s.exchangeCode(s.IssueCode(0, s.cfg.RedirectURI))
}

// api calls the API with a bearer token (none when token is "") and an optional JSON body.
func (s *sim) api(method, path, token string, body any) response {
	s.t.Helper()
	return do(s.t, apiRequest(method, s.URL+path, token, body))
}

// wantAPIError checks an API error answer: status and Pipedrive's error body.
func wantAPIError(t *testing.T, r response, status int, msg string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d (%s), want %d", r.status, r.body, status)
	}
	m := r.json(t)
	if m["success"] != false || m["error"] != msg || m["error_info"] != ErrorInfo {
		t.Errorf("body = %s, want success false, error %q, error_info %q", r.body, msg, ErrorInfo)
	}
	if v, ok := m["data"]; !ok || v != nil {
		t.Errorf("body = %s, want data null", r.body)
	}
	if v, ok := m["additional_data"]; !ok || v != nil {
		t.Errorf("body = %s, want additional_data null", r.body)
	}
}

// wantOAuthError checks an OAuth error answer: status, exact message and error code.
func wantOAuthError(t *testing.T, r response, status int, msg, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d (%s), want %d", r.status, r.body, status)
	}
	m := r.json(t)
	if m["success"] != false || m["message"] != msg {
		t.Errorf("body = %s, want success false, message %q", r.body, msg)
	}
	got, has := m["error"]
	if code == "" && has {
		t.Errorf("body = %s, want no error key", r.body)
	}
	if code != "" && got != code {
		t.Errorf("error = %v, want %q", got, code)
	}
}

func (ts *testServer) AuthURL() string  { return ts.URL + "/oauth/authorize" }
func (ts *testServer) TokenURL() string { return ts.URL + "/oauth/token" }
