package pdsim

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRateLimitWindow checks the headers, the 429 and recovery after the 2-second window
// (without the burst penalty, which TestBurstPenalty covers).
func TestRateLimitWindow(t *testing.T) {
	s := newSim(t, Config{RateLimit: 3, BurstPenalty: -1})
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
	if r := s.api("GET", "/api/v2/deals/999", other.AccessToken, nil); r.status != 404 || r.header.Get("x-ratelimit-remaining") != "1" {
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

// TestDailyBudget checks the per-company token budget as Pipedrive documents it: calls cost
// tokens by kind, a call is served while any is left, the spent budget is a 429 "daily request
// budget exceeded" whose burst headers still say reset 2 and which has no Retry-After, the
// budget headers are x-daily-ratelimit-token-*, and the budget returns at the server's midnight.
func TestDailyBudget(t *testing.T) {
	s := newSim(t, Config{DailyBudget: 30, AccessTokenTTL: 48 * time.Hour})
	a, b := s.install(), s.install()
	r := s.api("GET", "/api/v1/users/me", a.AccessToken, nil) // get one: 2
	if r.status != 200 || r.header.Get("x-daily-ratelimit-token-remaining") != "28" || r.header.Get("x-daily-ratelimit-token-limit") != "30" {
		t.Fatalf("first call = %d, budget %q of %q; want 200, 28 of 30", r.status, r.header.Get("x-daily-ratelimit-token-remaining"), r.header.Get("x-daily-ratelimit-token-limit"))
	}
	// The budget is per company, so a second token of the same company shares it; a v1 list
	// costs 20.
	if r := s.api("GET", "/api/v1/deals", b.AccessToken, nil); r.status != 200 || r.header.Get("x-daily-ratelimit-token-remaining") != "8" {
		t.Fatalf("list = %d, budget left %q; want 200, 8", r.status, r.header.Get("x-daily-ratelimit-token-remaining"))
	}
	// A change costs 10: served with 8 left, then nothing is left.
	if r := s.api("POST", "/api/v2/deals", a.AccessToken, map[string]any{"title": "x"}); r.status != 200 || r.header.Get("x-daily-ratelimit-token-remaining") != "3" {
		t.Fatalf("v2 create = %d, budget left %q; want 200, 3 (v2 costs half: 5)", r.status, r.header.Get("x-daily-ratelimit-token-remaining"))
	}
	if r := s.api("POST", "/api/v1/deals", a.AccessToken, map[string]any{"title": "y"}); r.status != 201 || r.header.Get("x-daily-ratelimit-token-remaining") != "0" {
		t.Fatalf("v1 create = %d, budget left %q; want 201, 0", r.status, r.header.Get("x-daily-ratelimit-token-remaining"))
	}
	r = s.api("GET", "/api/v1/users/me", a.AccessToken, nil)
	wantAPIError(t, r, 429, MsgDailyBudgetExceeded)
	if got := r.header.Get("Retry-After"); got != "" {
		t.Errorf("Retry-After = %q, want none (Pipedrive documents none)", got)
	}
	if r.header.Get("x-ratelimit-reset") != "2" || r.header.Get("x-daily-ratelimit-token-remaining") != "0" {
		t.Errorf("429 x-ratelimit-reset %q, budget left %q; want the burst window's 2 and 0",
			r.header.Get("x-ratelimit-reset"), r.header.Get("x-daily-ratelimit-token-remaining"))
	}
	if _, ok := r.header["X-Daily-Requests-Left"]; ok {
		t.Errorf("x-daily-requests-left sent, want only for api_token POST/PUT requests")
	}
	if got := s.CompanyBudget(DefaultCompanyID); got.Limit != 30 || got.Remaining != 0 || !got.ResetsAt.Equal(time.Date(2025, 3, 5, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("CompanyBudget = %+v, want 30, 0 left, resets at midnight UTC", got)
	}
	// t0 is 10:00 UTC: 14 hours to midnight.
	s.clock.Advance(14*time.Hour - time.Second)
	if r := s.api("GET", "/api/v1/users/me", a.AccessToken, nil); r.status != 429 {
		t.Errorf("one second before midnight = %d, want 429", r.status)
	}
	s.clock.Advance(time.Second)
	if r := s.api("GET", "/api/v1/users/me", a.AccessToken, nil); r.status != 200 || r.header.Get("x-daily-ratelimit-token-remaining") != "28" {
		t.Errorf("after midnight = %d, budget left %q; want 200, 28", r.status, r.header.Get("x-daily-ratelimit-token-remaining"))
	}
}

// TestDocumentedBudget checks 30,000 × plan multiplier × seats + top-ups and the reset at
// midnight in the server's timezone, not UTC's.
func TestDocumentedBudget(t *testing.T) {
	tz := time.FixedZone("server", -5*3600) // t0, 10:00 UTC, is 05:00 there
	s := newSim(t, Config{TokenBudget: true, Plan: PlanProfessional, Seats: 3, TopUpTokens: 1000, ServerTimezone: tz, AccessTokenTTL: 48 * time.Hour})
	tok := s.install()
	r := s.api("GET", "/api/v2/deals/1", tok.AccessToken, nil)
	if want := strconv.Itoa(30000*5*3 + 1000); r.header.Get("x-daily-ratelimit-token-limit") != want {
		t.Errorf("budget limit = %q, want %s", r.header.Get("x-daily-ratelimit-token-limit"), want)
	}
	if r.header.Get("x-ratelimit-limit") != "400" {
		t.Errorf("burst limit = %q, want the professional plan's 400", r.header.Get("x-ratelimit-limit"))
	}
	s.SpendBudget(DefaultCompanyID, 1<<30)
	if r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil); r.status != 429 {
		t.Fatalf("spent budget = %d, want 429", r.status)
	}
	// Midnight UTC is not the server's: still spent 14 hours later, back at 05:00 UTC.
	s.clock.Advance(14 * time.Hour)
	if r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil); r.status != 429 {
		t.Errorf("after midnight UTC = %d, want 429 (the server's day has not ended)", r.status)
	}
	s.clock.Advance(5 * time.Hour)
	if r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil); r.status != 200 {
		t.Errorf("after the server's midnight = %d, want 200", r.status)
	}
}

func TestCallCost(t *testing.T) {
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/deals/5", 2},
		{"GET", "/api/v1/users/me", 2},
		{"GET", "/api/v1/deals", 20},
		{"PUT", "/api/v1/deals/5", 10},
		{"DELETE", "/api/v1/deals/5", 10},
		{"GET", "/api/v1/itemSearch", 40},
		{"GET", "/api/v2/deals/5", 1},
		{"GET", "/api/v2/deals", 10},
		{"PATCH", "/api/v2/deals/5", 5},
		{"GET", "/api/v2/deals/search", 20},
		{"GET", "/api/v2/persons/search", 20},
		{"GET", "/api/v2/organizations/search", 20},
		{"GET", "/api/v2/itemSearch", 20},
	}
	for _, tt := range tests {
		if got := CallCost(tt.method, tt.path); got != tt.want {
			t.Errorf("CallCost(%s %s) = %d, want %d", tt.method, tt.path, got, tt.want)
		}
	}
}

// TestBudgetHeadersSometimesAbsent: with BudgetHeadersOmitted some answers leave them out.
func TestBudgetHeadersSometimesAbsent(t *testing.T) {
	s := newSim(t, Config{TokenBudget: true, BudgetHeadersOmitted: 0.5, RateLimit: 1000})
	tok := s.install()
	with := 0
	for range 40 {
		if s.api("GET", "/api/v2/deals", tok.AccessToken, nil).header.Get("x-daily-ratelimit-token-remaining") != "" {
			with++
		}
	}
	if with == 0 || with == 40 {
		t.Errorf("answers with budget headers = %d of 40, want some but not all", with)
	}
}

// TestRollingWindow: the window rolls (a call leaves it 2 s after it was made), and search
// calls have their own window of 10 (without the burst penalty).
func TestRollingWindow(t *testing.T) {
	s := newSim(t, Config{RateLimit: 4, BurstPenalty: -1})
	tok := s.install()
	for range 2 {
		s.api("GET", "/api/v2/deals", tok.AccessToken, nil)
	}
	s.clock.Advance(time.Second)
	for range 2 {
		s.api("GET", "/api/v2/deals", tok.AccessToken, nil)
	}
	r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil)
	if r.status != 429 || r.header.Get("x-ratelimit-reset") != "1" {
		t.Fatalf("fifth call in the window = %d reset %q, want 429, 1", r.status, r.header.Get("x-ratelimit-reset"))
	}
	// 1 s later the first two calls have left the window, the last two have not.
	s.clock.Advance(time.Second)
	for i, want := range []int{200, 200, 429} {
		if r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil); r.status != want {
			t.Errorf("call %d after the first two left = %d, want %d", i, r.status, want)
		}
	}
	// Search has its own window, of 10.
	for i := range 11 {
		r := s.api("GET", "/api/v2/deals/search?term=xy", tok.AccessToken, nil)
		if (r.status == 429) != (i == 10) || (r.status != 200) != (i == 10) || r.header.Get("x-ratelimit-limit") != "10" {
			t.Fatalf("search %d = %d limit %q, want 429 only for the 11th, limit 10", i, r.status, r.header.Get("x-ratelimit-limit"))
		}
	}
}

// TestBurstPenalty: going over the window answers 429 with Retry-After: 10 and
// x-ratelimit-reset: 10 (Pipedrive's penalty), and every call of that window is refused until
// the penalty ends, even after the window's own calls left it, with the time left rounded up;
// the calls during the penalty neither extend it nor charge the budget; the search window and
// other tokens are not affected; at the penalty's end the window serves again.
func TestBurstPenalty(t *testing.T) {
	s := newSim(t, Config{RateLimit: 2, DailyBudget: 1000})
	tok := s.install()
	other := s.install()
	for range 2 {
		if r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil); r.status != 200 {
			t.Fatalf("call in the window = %d, want 200", r.status)
		}
	}
	r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil)
	wantAPIError(t, r, 429, MsgRequestOverLimit)
	if r.header.Get("Retry-After") != "10" || r.header.Get("x-ratelimit-reset") != "10" || r.header.Get("x-ratelimit-remaining") != "0" {
		t.Errorf("going over: Retry-After %q, reset %q, remaining %q; want 10, 10, 0",
			r.header.Get("Retry-After"), r.header.Get("x-ratelimit-reset"), r.header.Get("x-ratelimit-remaining"))
	}
	// Only the window that went over: search and other tokens are not penalised.
	if r := s.api("GET", "/api/v2/deals/search?term=xy", tok.AccessToken, nil); r.status != 200 || r.header.Get("Retry-After") != "" {
		t.Errorf("search during a general penalty = %d Retry-After %q, want 200 without", r.status, r.header.Get("Retry-After"))
	}
	if r := s.api("GET", "/api/v2/deals", other.AccessToken, nil); r.status != 200 {
		t.Errorf("another token = %d, want 200", r.status)
	}
	spent := 1000 - s.CompanyBudget(DefaultCompanyID).Remaining
	for _, tt := range []struct {
		after time.Duration
		want  string // Retry-After, "" for a served call
	}{
		{2500 * time.Millisecond, "8"}, // the window's calls have left it; the penalty holds
		{7 * time.Second, "1"},         // 9.5 s in: half a second left, rounded up
		{500*time.Millisecond - time.Nanosecond, "1"},
		{time.Nanosecond, ""}, // exactly at its end: served
	} {
		s.clock.Advance(tt.after)
		r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil)
		switch {
		case tt.want == "" && r.status != 200:
			t.Errorf("at the penalty's end = %d, want 200", r.status)
		case tt.want != "" && (r.status != 429 || r.header.Get("Retry-After") != tt.want || r.header.Get("x-ratelimit-reset") != tt.want):
			t.Errorf("during the penalty = %d Retry-After %q reset %q, want 429 with %s", r.status, r.header.Get("Retry-After"), r.header.Get("x-ratelimit-reset"), tt.want)
		}
		if tt.want == "" {
			continue
		}
		if got := 1000 - s.CompanyBudget(DefaultCompanyID).Remaining; got != spent {
			t.Errorf("budget spent during the penalty = %d, want %d (refused calls are free)", got, spent)
		}
	}
}

// TestSustained429sBecomeCloudflareBlock: a token that keeps calling into 429s is answered
// Cloudflare's HTML 403 page for a while, without rate headers.
func TestSustained429sBecomeCloudflareBlock(t *testing.T) {
	s := newSim(t, Config{RateLimit: 1, BlockAfter: 3, BlockFor: time.Minute})
	tok := s.install()
	s.api("GET", "/api/v2/deals", tok.AccessToken, nil)
	for i := range 3 {
		if r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil); r.status != 429 {
			t.Fatalf("call %d = %d, want 429", i, r.status)
		}
	}
	s.clock.Advance(5 * time.Second)
	r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil)
	if r.status != 403 || !strings.Contains(r.header.Get("Content-Type"), "html") || !strings.Contains(string(r.body), "Cloudflare") || r.header.Get("x-ratelimit-remaining") != "" {
		t.Fatalf("after sustained 429s = %d %q %q, want 403 HTML without rate headers", r.status, r.header.Get("Content-Type"), r.body)
	}
	s.clock.Advance(time.Minute)
	if r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil); r.status != 200 {
		t.Errorf("after the block = %d, want 200", r.status)
	}
}

// TestAccountStates: 402, feature capping 403 and 415 answer every call of the company.
func TestAccountStates(t *testing.T) {
	s := newSim(t, Config{AdminEnabled: true})
	tok := s.install()
	tests := []struct {
		state  AccountState
		status int
		msg    string
		code   string
	}{
		{AccountPaymentRequired, 402, MsgPaymentRequired, ""},
		{AccountFeatureCapped, 403, MsgFeatureCapped, CodeFeatureCapped},
		{AccountFeatureDisabled, 415, MsgFeatureNotEnabled, ""},
	}
	for _, tt := range tests {
		if r := s.admin("POST", "/_sim/account-state", `{"company_id":3408256,"state":"`+string(tt.state)+`"}`); r.status != 204 {
			t.Fatalf("POST /_sim/account-state = %d %s", r.status, r.body)
		}
		r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil)
		wantAPIError(t, r, tt.status, tt.msg)
		if m := r.json(t); tt.code != "" && m["code"] != tt.code {
			t.Errorf("%s body = %s, want code %s", tt.state, r.body, tt.code)
		}
	}
	if err := s.SetAccountState(DefaultCompanyID, AccountOpen); err != nil {
		t.Fatal(err)
	}
	if r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil); r.status != 200 {
		t.Errorf("open again = %d, want 200", r.status)
	}
	if err := s.SetAccountState(DefaultCompanyID, "closed"); err == nil {
		t.Errorf("SetAccountState(closed) = nil, want an error")
	}
	if r := s.admin("POST", "/_sim/account-state", `{"company_id":0,"state":"open"}`); r.status != 400 {
		t.Errorf("account-state without company = %d, want 400", r.status)
	}
}

// TestAdminBudget: the budget can be read and spent through the admin API.
func TestAdminBudget(t *testing.T) {
	s := newSim(t, Config{AdminEnabled: true, DailyBudget: 100})
	tok := s.install()
	if r := s.admin("POST", "/_sim/budget/spend", `{"company_id":3408256}`); r.status != 200 || !strings.Contains(string(r.body), `"remaining":0`) {
		t.Fatalf("spend = %d %s, want 200 with nothing remaining", r.status, r.body)
	}
	wantAPIError(t, s.api("GET", "/api/v2/deals", tok.AccessToken, nil), 429, MsgDailyBudgetExceeded)
	if r := s.admin("POST", "/_sim/budget/spend", `{"company_id":3408256,"tokens":-60}`); r.status != 200 || !strings.Contains(string(r.body), `"remaining":60`) {
		t.Errorf("give back = %d %s, want 60 remaining", r.status, r.body)
	}
	if r := s.admin("GET", "/_sim/budget?company_id=3408256", ""); r.status != 200 || !strings.Contains(string(r.body), `"limit":100`) {
		t.Errorf("GET budget = %d %s", r.status, r.body)
	}
	for _, bad := range []string{"/_sim/budget", "/_sim/budget?company_id=x"} {
		if r := s.admin("GET", bad, ""); r.status != 400 {
			t.Errorf("GET %s = %d, want 400", bad, r.status)
		}
	}
	if r := s.admin("POST", "/_sim/budget/spend", `{"company_id":-1}`); r.status != 400 {
		t.Errorf("spend without company = %d, want 400", r.status)
	}
}

// TestGatewayUnauthorized and v2 validation errors: the live answers' shapes.
func TestLiveErrorShapes(t *testing.T) {
	s := newSim(t, Config{GatewayUnauthorized: true})
	r := s.api("GET", "/api/v2/deals", "not-a-token", nil)
	wantAPIError(t, r, 401, MsgUnauthorizedAccess)
	if r.header.Get("x-401-by-gw") != "true" || r.json(t)["errorCode"] != float64(401) {
		t.Errorf("401 = %v %s, want x-401-by-gw: true and errorCode 401", r.header, r.body)
	}
	tok := s.install()
	r = s.api("POST", "/api/v2/deals", tok.AccessToken, map[string]any{"value": 10})
	wantAPIError(t, r, 400, r.json(t)["error"].(string))
	if r.json(t)["code"] != CodeSchemaValidation {
		t.Errorf("v2 validation error = %s, want code %s", r.body, CodeSchemaValidation)
	}
	r = s.api("POST", "/api/v1/deals", tok.AccessToken, map[string]any{"value": 10})
	if _, ok := r.json(t)["code"]; r.status != 400 || ok {
		t.Errorf("v1 validation error = %d %s, want 400 without code", r.status, r.body)
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

// TestV1Retired: with V1Retired the v1 entity endpoints answer 410 and v2 serves them.
func TestV1Retired(t *testing.T) {
	s := newSim(t, Config{V1Retired: true})
	tok := s.install()
	for _, p := range []string{"/api/v1/deals", "/api/v1/persons/5", "/api/v1/organizations", "/api/v1/activities"} {
		wantAPIError(t, s.api("GET", p, tok.AccessToken, nil), 410, MsgGone)
	}
	if r := s.api("GET", "/api/v2/deals", tok.AccessToken, nil); r.status != 200 {
		t.Errorf("GET /api/v2/deals = %d, want 200", r.status)
	}
	if r := s.api("GET", "/api/v1/users/me", tok.AccessToken, nil); r.status != 200 {
		t.Errorf("GET /api/v1/users/me = %d, want 200 (not retired)", r.status)
	}
}
