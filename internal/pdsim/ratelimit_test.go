package pdsim

import (
	"strconv"
	"testing"
	"time"
)

// TestRateLimitWindow checks the headers, the 429 and recovery after the 2-second window.
func TestRateLimitWindow(t *testing.T) {
	s := newSim(t, Config{RateLimit: 3})
	tok := s.install()
	for i := 1; i <= 3; i++ {
		r := s.api("GET", "/api/v1/users/me", tok.AccessToken, nil)
		if r.status != 200 {
			t.Fatalf("call %d = %d, want 200", i, r.status)
		}
		if got := r.header.Get("x-ratelimit-remaining"); got != strconv.Itoa(3-i) {
			t.Errorf("call %d remaining = %q, want %d", i, got, 3-i)
		}
		if r.header.Get("x-ratelimit-limit") != "3" || r.header.Get("x-ratelimit-reset") != "2" {
			t.Errorf("call %d limit/reset = %q/%q, want 3/2", i, r.header.Get("x-ratelimit-limit"), r.header.Get("x-ratelimit-reset"))
		}
	}
	s.clock.Advance(1500 * time.Millisecond)
	r := s.api("GET", "/api/v1/users/me", tok.AccessToken, nil)
	wantAPIError(t, r, 429, MsgRequestOverLimit)
	if r.header.Get("x-ratelimit-remaining") != "0" || r.header.Get("x-ratelimit-reset") != "1" {
		t.Errorf("429 remaining/reset = %q/%q, want 0/1", r.header.Get("x-ratelimit-remaining"), r.header.Get("x-ratelimit-reset"))
	}
	// The limit is per token: another token of the same user is not limited.
	other := s.install()
	if r := s.api("GET", "/api/v1/users/me", other.AccessToken, nil); r.status != 200 {
		t.Errorf("other token = %d, want 200", r.status)
	}
	// Errors after authentication carry the headers too.
	if r := s.api("GET", "/api/v1/deals/999", other.AccessToken, nil); r.status != 404 || r.header.Get("x-ratelimit-remaining") != "1" {
		t.Errorf("404 = %d with remaining %q, want 404 with 1", r.status, r.header.Get("x-ratelimit-remaining"))
	}
	s.clock.Advance(500 * time.Millisecond)
	r = s.api("GET", "/api/v1/users/me", tok.AccessToken, nil)
	if r.status != 200 || r.header.Get("x-ratelimit-remaining") != "2" {
		t.Errorf("after the window = %d, remaining %q; want 200, 2", r.status, r.header.Get("x-ratelimit-remaining"))
	}
	if c := s.Counters(); c.APIByStatus[429] != 1 {
		t.Errorf("counted 429s = %d, want 1", c.APIByStatus[429])
	}
}

// TestDailyBudget checks the per-company daily budget and its Retry-After.
func TestDailyBudget(t *testing.T) {
	s := newSim(t, Config{DailyBudget: 2, AccessTokenTTL: 48 * time.Hour})
	a, b := s.install(), s.install()
	r := s.api("GET", "/api/v1/users/me", a.AccessToken, nil)
	if r.status != 200 || r.header.Get("x-daily-requests-left") != "1" {
		t.Fatalf("first call = %d, daily left %q; want 200, 1", r.status, r.header.Get("x-daily-requests-left"))
	}
	// The budget is per company, so a second token of the same company shares it.
	if r := s.api("GET", "/api/v1/users/me", b.AccessToken, nil); r.status != 200 || r.header.Get("x-daily-requests-left") != "0" {
		t.Fatalf("second call = %d, daily left %q; want 200, 0", r.status, r.header.Get("x-daily-requests-left"))
	}
	r = s.api("GET", "/api/v1/users/me", a.AccessToken, nil)
	wantAPIError(t, r, 429, MsgDailyBudgetExceeded)
	// t0 is 10:00 UTC: 14 hours to midnight.
	if got := r.header.Get("Retry-After"); got != strconv.Itoa(14*3600) {
		t.Errorf("Retry-After = %q, want %d", got, 14*3600)
	}
	if r.header.Get("x-daily-requests-left") != "0" {
		t.Errorf("x-daily-requests-left = %q, want 0", r.header.Get("x-daily-requests-left"))
	}
	s.clock.Advance(14*time.Hour - time.Second)
	if r := s.api("GET", "/api/v1/users/me", a.AccessToken, nil); r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Errorf("one second before midnight = %d, Retry-After %q; want 429, 1", r.status, r.header.Get("Retry-After"))
	}
	s.clock.Advance(time.Second)
	if r := s.api("GET", "/api/v1/users/me", a.AccessToken, nil); r.status != 200 {
		t.Errorf("after midnight = %d, want 200", r.status)
	}
}

// TestNoDailyHeaderWhenOff checks that x-daily-requests-left only appears with a budget.
func TestNoDailyHeaderWhenOff(t *testing.T) {
	s := newSim(t, Config{})
	r := s.api("GET", "/api/v1/users/me", s.install().AccessToken, nil)
	if _, ok := r.header["X-Daily-Requests-Left"]; ok {
		t.Errorf("x-daily-requests-left present without a budget")
	}
	if r.header.Get("x-ratelimit-limit") != strconv.Itoa(DefaultRateLimit) {
		t.Errorf("x-ratelimit-limit = %q, want %d", r.header.Get("x-ratelimit-limit"), DefaultRateLimit)
	}
}
