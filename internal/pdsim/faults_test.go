package pdsim

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestFaultStatusTimes checks a status fault for the next N calls, then normal answers.
func TestFaultStatusTimes(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	id := s.Inject(Fault{Method: "GET", Path: "/api/v1/users/me", Status: 500, Times: 2})
	for range 2 {
		wantAPIError(t, s.api("GET", "/api/v1/users/me", tok, nil), 500, MsgInternalServerError)
	}
	if r := s.api("GET", "/api/v1/users/me", tok, nil); r.status != 200 {
		t.Errorf("third call = %d, want 200", r.status)
	}
	if c := s.Counters(); c.Faults[id] != 2 || c.APIByStatus[500] != 2 || c.APIByRoute["GET /api/v1/users/me"] != 3 {
		t.Errorf("counters faults %v statuses %v routes %v; want 2 firings, 2×500, 3 calls", c.Faults, c.APIByStatus, c.APIByRoute)
	}
	if got := s.Faults(); len(got) != 0 {
		t.Errorf("Faults() = %v, want exhausted fault removed", got)
	}
}

// TestFaultMatching checks method, exact path and prefix matching.
func TestFaultMatching(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	s.Inject(Fault{Method: "POST", Path: "/api/v2/*", Status: 502})
	s.Inject(Fault{Path: "/api/v2/organizations", Status: 503})
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v2/deals", 200},
		{"POST", "/api/v2/deals", 502},
		{"POST", "/api/v2/persons", 502},
		{"GET", "/api/v2/organizations", 503},
		{"POST", "/api/v2/organizations", 502}, // the first fault injected that matches wins
		{"GET", "/api/v2/organizations/1", 404},
	}
	for _, tt := range tests {
		if r := s.api(tt.method, tt.path, tok, map[string]any{"title": "x"}); r.status != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, r.status, tt.want)
		}
	}
	s.ClearFaults()
	if r := s.api("GET", "/api/v2/organizations", tok, nil); r.status != 200 {
		t.Errorf("after ClearFaults = %d, want 200", r.status)
	}
	id := s.Inject(Fault{Status: 500})
	if !s.RemoveFault(id) || s.RemoveFault(id) {
		t.Errorf("RemoveFault(%s) twice = want true then false", id)
	}
}

// TestFaultHeaderAndBody checks custom headers and bodies, and the default bodies per endpoint.
func TestFaultHeaderAndBody(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken

	s.Inject(Fault{Path: "/api/v2/deals", Status: 429, Header: http.Header{"Retry-After": {"7"}}, Times: 1})
	r := s.api("GET", "/api/v2/deals", tok, nil)
	wantAPIError(t, r, 429, MsgRequestOverLimit)
	if r.header.Get("Retry-After") != "7" {
		t.Errorf("Retry-After = %q, want 7", r.header.Get("Retry-After"))
	}

	page := "<html><body>Attention Required! | Cloudflare</body></html>"
	s.Inject(Fault{Path: "/api/v2/deals", Status: 403, Body: page, Times: 1})
	r = s.api("GET", "/api/v2/deals", tok, nil)
	if r.status != 403 || string(r.body) != page || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("HTML 403 = %d %q (%s), want the page as text/html", r.status, r.body, r.header.Get("Content-Type"))
	}

	s.Inject(Fault{Path: "/oauth/token", Status: 500, Times: 1})
	wantOAuthError(t, s.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}}), 500, MsgInternalServerError, "")

	s.Inject(Fault{Path: "/oauth/authorize", Status: 503, Times: 1})
	r = s.authorize(url.Values{"client_id": {DefaultClientID}}, "")
	if r.status != 503 || !strings.Contains(string(r.body), MsgMaintenance) {
		t.Errorf("authorize fault = %d %s, want 503 with the maintenance message", r.status, r.body)
	}
}

// TestFaultFraction checks that fractions fire about that often, reproducibly per seed.
func TestFaultFraction(t *testing.T) {
	run := func(seed uint64) []int {
		s := newSim(t, Config{Seed: seed, RateLimit: 1000})
		tok := s.install().AccessToken
		s.Inject(Fault{Path: "/api/*", Status: 500, Fraction: 0.3})
		out := make([]int, 200)
		for i := range out {
			out[i] = s.api("GET", "/api/v1/users/me", tok, nil).status
		}
		return out
	}
	a, b, c := run(42), run(42), run(7)
	failures := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 42 run differs at call %d: %d vs %d", i, a[i], b[i])
		}
		if a[i] == 500 {
			failures++
		}
	}
	if failures < 35 || failures > 85 {
		t.Errorf("failures = %d of 200, want about 60", failures)
	}
	if equalInts(a, c) {
		t.Errorf("seeds 42 and 7 produced the same sequence")
	}
}

// equalInts reports whether two slices are equal.
func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFaultLatency checks a pure delay, and that a client timeout cuts it short.
func TestFaultLatency(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	s.Inject(Fault{Path: "/api/v1/users/me", Latency: 150 * time.Millisecond, Times: 1})
	start := time.Now()
	r := s.api("GET", "/api/v1/users/me", tok, nil)
	if took := time.Since(start); r.status != 200 || took < 150*time.Millisecond {
		t.Errorf("delayed call = %d after %v, want 200 after at least 150ms", r.status, took)
	}

	s.Inject(Fault{Path: "/api/v1/users/me", Latency: 5 * time.Second, Status: 200, Times: 1})
	client := &http.Client{Timeout: 100 * time.Millisecond}
	start = time.Now()
	_, err := client.Do(bearerRequest(t, s.URL+"/api/v1/users/me", tok))
	if !isTimeout(err) || time.Since(start) > 2*time.Second {
		t.Errorf("slow call error = %v after %v, want a client timeout near 100ms", err, time.Since(start))
	}
}

// TestFaultHang checks that a hang lasts until the client gives up, and is counted as no answer.
func TestFaultHang(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	s.Inject(Fault{Path: "/api/v2/deals", Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req := bearerRequest(t, s.URL+"/api/v2/deals", tok).WithContext(ctx)
	start := time.Now()
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("hung call error = %v after %v, want deadline exceeded after 200ms", err, time.Since(start))
	}
	waitFor(t, func() bool { return s.Counters().APIByStatus[0] == 1 }, "hung call counted with status 0")

	// ReleaseHung frees a request that would otherwise hang forever.
	done := make(chan error, 1)
	req = bearerRequest(t, s.URL+"/api/v2/deals", tok)
	go func() {
		_, err := http.DefaultClient.Do(req)
		done <- err
	}()
	waitFor(t, func() bool { return s.Counters().Faults["f1"] == 2 }, "second call hanging")
	s.ReleaseHung()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("released call error = nil, want a closed connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("released call still hanging after 5s")
	}
}

// TestFaultHangComplete checks that a held request marked Complete is carried out when its
// client goes away: the deal exists though the caller never saw an answer.
func TestFaultHangComplete(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	id := s.Inject(Fault{Method: "POST", Path: "/api/v2/deals", Hang: true, Complete: true, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/api/v2/deals", strings.NewReader(`{"title":"held"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	done := make(chan error, 1)
	go func() {
		_, err := http.DefaultClient.Do(req)
		done <- err
	}()
	waitFor(t, func() bool { return s.Counters().Faults[id] == 1 }, "POST held")
	if got := s.api("GET", "/api/v2/deals", tok, nil); strings.Contains(string(got.body), "held") {
		t.Fatalf("deals while the POST is held = %s, want none named held", got.body)
	}
	cancel() // the caller dies
	if err := <-done; err == nil {
		t.Errorf("held call error = nil, want the cancellation")
	}
	waitFor(t, func() bool {
		return strings.Contains(string(s.api("GET", "/api/v2/deals", tok, nil).body), `"title":"held"`)
	}, "the held POST carried out after its caller went away")
	if err := (Fault{Complete: true}).Validate(); err == nil {
		t.Errorf("Validate(complete without hang or latency) = nil, want error")
	}
}

// TestFaultDrop checks that a dropped connection gives the client an error, not a response.
func TestFaultDrop(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	s.Inject(Fault{Path: "/api/v2/deals", Method: "POST", Drop: true, Times: 1})
	s.Inject(Fault{Path: "/oauth/token", Drop: true, Times: 1})
	// A transport without keep-alives never retries on a fresh connection.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

	req := bearerRequest(t, s.URL+"/api/v2/deals", tok)
	req.Method = "POST"
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("dropped call answered %d, want a connection error", resp.StatusCode)
	}
	form := strings.NewReader("grant_type=refresh_token")
	treq, _ := http.NewRequest("POST", s.TokenURL(), form)
	treq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := client.Do(treq); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped token call answered %d, want a connection error", resp.StatusCode)
	}
	if r := s.api("POST", "/api/v2/deals", tok, map[string]any{"title": "t"}); r.status != 200 {
		t.Errorf("call after the drop = %d, want 200", r.status)
	}
	// The server counts after the connection is gone, so the client may see the drop first.
	waitFor(t, func() bool { return s.Counters().APIByStatus[0] == 1 }, "dropped call counted with status 0")
}

// TestFaultValidate checks that invalid faults are rejected.
func TestFaultValidate(t *testing.T) {
	bad := []Fault{{Status: 42}, {Times: -1}, {Fraction: 1.5}, {Latency: -time.Second}, {Path: "api/v1"}}
	for _, f := range bad {
		if err := f.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", f)
		}
	}
	s := New(Config{})
	defer func() {
		if recover() == nil {
			t.Errorf("Inject(invalid) did not panic")
		}
	}()
	s.Inject(Fault{Status: 1000})
}

// bearerRequest builds a GET with a bearer token.
func bearerRequest(t *testing.T, u, tok string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return req
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
