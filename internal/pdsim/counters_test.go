package pdsim

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCounters checks each counter family after a known sequence of calls.
func TestCounters(t *testing.T) {
	s := newSim(t, Config{RotateRefreshTokens: true})
	tok := s.install()
	next := s.refreshToken(tok.RefreshToken)
	s.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}) // spent
	s.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}})              // unknown
	s.postForm("/oauth/token", url.Values{"grant_type": {"magic"}})
	s.postForm("/oauth/token", url.Values{})
	s.authorize(url.Values{"client_id": {DefaultClientID}}, "")
	s.api("GET", "/api/v2/deals/5", next.AccessToken, nil)
	s.api("GET", "/api/v2/deals/6", next.AccessToken, nil)
	s.api("GET", "/api/v1/users/me", next.AccessToken, nil)
	s.api("GET", "/api/v1/users/me", "", nil)
	s.api("GET", "/api/v9/what", next.AccessToken, nil)

	c := s.Counters()
	inst := fmt.Sprintf("%d:%d", DefaultCompanyID, DefaultUserID)
	checks := []struct {
		name      string
		got, want int
	}{
		{"TokenByGrant[authorization_code]", c.TokenByGrant["authorization_code"], 1},
		{"TokenByGrant[refresh_token]", c.TokenByGrant["refresh_token"], 3},
		{"TokenByGrant[(unsupported)]", c.TokenByGrant["(unsupported)"], 1},
		{"TokenByGrant[(missing)]", c.TokenByGrant["(missing)"], 1},
		{"TokenByInstallation[" + inst + "]", c.TokenByInstallation[inst], 3},
		{"TokenErrors[refresh invalid]", c.TokenErrors[MsgRefreshTokenInvalid], 2},
		{"TokenErrors[unsupported]", c.TokenErrors[MsgUnsupportedGrantType], 1},
		{"TokenErrors[missing]", c.TokenErrors[MsgMissingGrantType], 1},
		{"Authorize[approved]", c.Authorize["approved"], 1},
		{"APIByRoute[GET /api/v2/deals/{id}]", c.APIByRoute["GET /api/v2/deals/{id}"], 2},
		{"APIByRoute[GET /api/v1/users/me]", c.APIByRoute["GET /api/v1/users/me"], 2},
		{"APIByRoute[GET unmatched]", c.APIByRoute["GET unmatched"], 1},
		{"APIByStatus[404]", c.APIByStatus[404], 3},
		{"APIByStatus[200]", c.APIByStatus[200], 1},
		{"APIByStatus[400]", c.APIByStatus[400], 1},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %d, want %d", ch.name, ch.got, ch.want)
		}
	}
	// A snapshot is a copy.
	c.APIByRoute["GET /api/v1/users/me"] = 100
	if s.Counters().APIByRoute["GET /api/v1/users/me"] != 2 {
		t.Errorf("changing a snapshot changed the server's counters")
	}
	s.ResetCounters()
	if c := s.Counters(); len(c.TokenByGrant)+len(c.APIByRoute)+len(c.TokenErrors) != 0 {
		t.Errorf("after ResetCounters = %+v, want empty", c)
	}
}

// TestConcurrentUse hammers one simulator from many goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	s := newSim(t, Config{RotateRefreshTokens: true, RateLimit: 10000})
	const workers, calls = 8, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := s.IssueToken(DefaultUserID)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range calls {
				var req *http.Request
				switch i % 3 {
				case 0:
					req = apiRequest("POST", s.URL+"/api/v2/deals", tok.AccessToken, map[string]any{"title": fmt.Sprint(w, "-", i)})
				case 1:
					req = apiRequest("GET", s.URL+"/api/v2/deals", tok.AccessToken, nil)
				default:
					req = apiRequest("GET", s.URL+"/api/v1/users/me", tok.AccessToken, nil)
				}
				if _, err := send(req); err != nil {
					t.Error(err)
				}
			}
			_ = s.Counters()
			_ = s.IssueCode(0, DefaultRedirectURI)
			s.clock.Advance(time.Millisecond)
		}()
	}
	// Faults come and go meanwhile.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			id := s.Inject(Fault{Path: "/api/v9/*", Status: 500})
			s.RemoveFault(id)
		}
	}()
	wg.Wait()
	c := s.Counters()
	total := 0
	for _, n := range c.APIByRoute {
		total += n
	}
	if total != workers*calls || c.APIByStatus[200] != workers*calls {
		t.Errorf("API calls = %d (%v), want %d all 200", total, c.APIByStatus, workers*calls)
	}
}

// TestConcurrentRefreshRotation checks that with rotation on, exactly one of many concurrent
// refreshes with the same token wins: what a client's refresh lock must prevent.
func TestConcurrentRefreshRotation(t *testing.T) {
	s := newSim(t, Config{RotateRefreshTokens: true})
	tok := s.install()
	var ok, failed atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := send(formRequest(s.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, DefaultClientID, DefaultClientSecret))
			if err != nil {
				t.Error(err)
				return
			}
			switch r.status {
			case 200:
				ok.Add(1)
			case 400:
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || failed.Load() != 9 {
		t.Errorf("concurrent refreshes: %d succeeded, %d failed; want 1 and 9", ok.Load(), failed.Load())
	}
	inst := fmt.Sprintf("%d:%d", DefaultCompanyID, DefaultUserID)
	if c := s.Counters(); c.TokenByInstallation[inst] != 11 {
		t.Errorf("token calls for %s = %d, want 11", inst, c.TokenByInstallation[inst])
	}
}

// TestClock checks the fake clock.
func TestClock(t *testing.T) {
	c := NewClock(t0)
	c.Advance(90 * time.Second)
	if got := c.Now(); !got.Equal(t0.Add(90 * time.Second)) {
		t.Errorf("Now() after Advance = %v, want t0+90s", got)
	}
	c.Set(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("Now() after Set = %v, want t0", got)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Advance(time.Second)
			_ = c.Now()
		}()
	}
	wg.Wait()
	if got := c.Now(); !got.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("Now() after 10 concurrent Advance(1s) = %v, want t0+10s", got)
	}
}
