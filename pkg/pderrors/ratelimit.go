package pderrors

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Call costs in daily budget tokens by kind of call, for v1 endpoints (developer docs "Rate
// limiting"; the exact cost per endpoint is Pipedrive's x-token-cost); v2 endpoints cost about
// half.
const (
	CostGetOne = 2
	CostList   = 20
	CostUpdate = 10
	CostSearch = 40
)

// CallCost is what method path costs of the company's daily token budget: a search
// (/…/search, itemSearch) 40, a list 20, a change (POST, PUT, PATCH, DELETE) 10, one item (a
// path ending in an id, or /users/me) 2; an /api/v2/ path half of that, rounded up. A query
// string is ignored.
func CallCost(method, path string) int {
	path, _, _ = strings.Cut(path, "?")
	c := CostUpdate
	switch {
	case strings.HasSuffix(path, "/search") || strings.Contains(path, "/itemSearch"):
		c = CostSearch
	case method == http.MethodGet || method == http.MethodHead:
		c = CostList
		last := path[strings.LastIndexByte(path, '/')+1:]
		if _, err := strconv.ParseInt(last, 10, 64); err == nil || last == "me" {
			c = CostGetOne
		}
	}
	if strings.HasPrefix(path, "/api/v2/") {
		c = (c + 1) / 2
	}
	return c
}

// RateLimit is what an API answer's headers say about Pipedrive's two limits: the burst window
// of the access token (x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset: a rolling
// 2-second window, 80 to 480 calls by plan, search calls in a window of their own) and the
// company's daily token budget (x-daily-ratelimit-token-limit and
// x-daily-ratelimit-token-remaining, not sent on every answer). Pipedrive sends them on
// successes and failures alike, so a caller that reads every answer can hold its next call
// before it would be answered 429.
type RateLimit struct {
	// Burst is true when x-ratelimit-remaining was readable; Limit, Remaining and Reset are
	// meaningful only then (Limit and Reset may still be 0 when their headers were missing).
	Burst bool
	// Limit is the window's size in calls (x-ratelimit-limit).
	Limit int
	// Remaining is how many calls the window has left (x-ratelimit-remaining), never negative.
	Remaining int
	// Reset is how long until the window has room again (x-ratelimit-reset), within
	// [0, MaxRetryAfter].
	Reset time.Duration
	// Daily is true when x-daily-ratelimit-token-remaining was readable; DailyLimit and
	// DailyRemaining are meaningful only then.
	Daily bool
	// DailyLimit is the company's daily token budget (x-daily-ratelimit-token-limit), 0 if
	// not sent.
	DailyLimit int64
	// DailyRemaining is the budget left today (x-daily-ratelimit-token-remaining), never
	// negative.
	DailyRemaining int64
}

// RateLimitOf reads the rate-limit headers of an API answer (any status). Unreadable values
// count as absent. It never reads x-daily-requests-left, the POST/PUT counter of api_token
// integrations. It allocates nothing.
func RateLimitOf(h http.Header) RateLimit {
	var rl RateLimit
	if len(h) == 0 {
		return rl
	}
	if n, ok := parseInt(headerValue(h, "X-Ratelimit-Remaining")); ok {
		rl.Burst, rl.Remaining = true, int(min(max(n, 0), 1<<31-1))
		if l, ok := parseInt(headerValue(h, "X-Ratelimit-Limit")); ok && l > 0 {
			rl.Limit = int(min(l, 1<<31-1))
		}
		if r, ok := parseSeconds(headerValue(h, "X-Ratelimit-Reset")); ok {
			rl.Reset = capHint(r)
		}
	}
	if n, ok := parseInt(headerValue(h, "X-Daily-Ratelimit-Token-Remaining")); ok {
		rl.Daily, rl.DailyRemaining = true, max(n, 0)
		if l, ok := parseInt(headerValue(h, "X-Daily-Ratelimit-Token-Limit")); ok && l > 0 {
			rl.DailyLimit = l
		}
	}
	return rl
}

// BudgetSpent reports whether the answer says the company's daily budget is used up: Daily
// with nothing remaining. A caller may pause the company on a success that says so, before
// its next call is answered 429.
func (rl RateLimit) BudgetSpent() bool { return rl.Daily && rl.DailyRemaining <= 0 }

// maxInt saturates parsed integers well below overflow.
const maxInt = 1 << 53

// parseInt reads an optionally signed decimal integer surrounded by optional white space;
// values beyond ±maxInt saturate. Anything else fails.
func parseInt(v string) (int64, bool) {
	v = trimSpace(v)
	neg := false
	if len(v) > 0 && (v[0] == '-' || v[0] == '+') {
		neg, v = v[0] == '-', v[1:]
	}
	if v == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = min(n*10+int64(c-'0'), maxInt)
	}
	if neg {
		n = -n
	}
	return n, true
}
