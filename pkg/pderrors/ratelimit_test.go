package pderrors_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

func TestRateLimitOf(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		want   pderrors.RateLimit
	}{
		{"nil", nil, pderrors.RateLimit{}},
		{"burst headers", hdr("X-RateLimit-Limit", "80", "X-RateLimit-Remaining", "12", "X-RateLimit-Reset", "2"),
			pderrors.RateLimit{Burst: true, Limit: 80, Remaining: 12, Reset: 2 * time.Second}},
		{"fractional reset", hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "0.5"),
			pderrors.RateLimit{Burst: true, Reset: 500 * time.Millisecond}},
		{"limit and reset without remaining are no burst", hdr("X-RateLimit-Limit", "80", "X-RateLimit-Reset", "2"), pderrors.RateLimit{}},
		{"negative remaining is 0", hdr("X-RateLimit-Remaining", "-3"), pderrors.RateLimit{Burst: true}},
		{"garbage remaining", hdr("X-RateLimit-Remaining", "many"), pderrors.RateLimit{}},
		{"garbage limit and reset", hdr("X-RateLimit-Remaining", "+4", "X-RateLimit-Limit", "lots", "X-RateLimit-Reset", "-1"),
			pderrors.RateLimit{Burst: true, Remaining: 4}},
		{"daily budget", hdr("X-Daily-Ratelimit-Token-Limit", "150000", "X-Daily-Ratelimit-Token-Remaining", "149980"),
			pderrors.RateLimit{Daily: true, DailyLimit: 150000, DailyRemaining: 149980}},
		{"daily limit alone is unknown", hdr("X-Daily-Ratelimit-Token-Limit", "150000"), pderrors.RateLimit{}},
		{"daily remaining below 0", hdr("X-Daily-Ratelimit-Token-Remaining", "-20", "X-Daily-Ratelimit-Token-Limit", "0"),
			pderrors.RateLimit{Daily: true}},
		{"x-daily-requests-left is not the budget", hdr("X-Daily-Requests-Left", "0"), pderrors.RateLimit{}},
		{"huge values saturate", hdr("X-RateLimit-Remaining", "99999999999999999999", "X-Daily-Ratelimit-Token-Remaining", "99999999999999999999"),
			pderrors.RateLimit{Burst: true, Remaining: 1<<31 - 1, Daily: true, DailyRemaining: 1 << 53}},
		{"empty values", hdr("X-RateLimit-Remaining", "", "X-Daily-Ratelimit-Token-Remaining", " - "), pderrors.RateLimit{}},
		{"lower-case keys built by hand", http.Header{"x-ratelimit-remaining": {" 7 "}, "x-daily-ratelimit-token-remaining": {"0"}},
			pderrors.RateLimit{Burst: true, Remaining: 7, Daily: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pderrors.RateLimitOf(tt.header); got != tt.want {
				t.Errorf("RateLimitOf(%v) = %+v, want %+v", tt.header, got, tt.want)
			}
		})
	}
}

func TestRateLimitBudgetSpent(t *testing.T) {
	tests := []struct {
		rl   pderrors.RateLimit
		want bool
	}{
		{pderrors.RateLimit{}, false},
		{pderrors.RateLimit{Daily: true}, true},
		{pderrors.RateLimit{Daily: true, DailyRemaining: 1}, false},
	}
	for _, tt := range tests {
		if got := tt.rl.BudgetSpent(); got != tt.want {
			t.Errorf("%+v.BudgetSpent() = %v, want %v", tt.rl, got, tt.want)
		}
	}
}

// TestRateLimitOfAllocs: RateLimitOf runs on every answer and must not allocate.
func TestRateLimitOfAllocs(t *testing.T) {
	h := hdr("X-RateLimit-Limit", "80", "X-RateLimit-Remaining", "12", "X-RateLimit-Reset", "2",
		"X-Daily-Ratelimit-Token-Limit", "30000", "X-Daily-Ratelimit-Token-Remaining", "100")
	if allocs := testing.AllocsPerRun(100, func() { _ = pderrors.RateLimitOf(h) }); allocs != 0 {
		t.Errorf("RateLimitOf allocates %v times per call, want 0", allocs)
	}
}
