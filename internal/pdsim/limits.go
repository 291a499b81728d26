package pdsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// Plan is a Pipedrive pricing tier as the rate limits see it: it sets the burst limit of an
// OAuth app's token (80, 160, 400 or 480 calls per rolling 2 seconds) and the daily token
// budget's multiplier (1, 2, 5 or 7).
type Plan string

// The plans, lowest first (developer docs, "Rate limiting").
const (
	PlanEssential    Plan = "essential"
	PlanAdvanced     Plan = "advanced"
	PlanProfessional Plan = "professional"
	PlanEnterprise   Plan = "enterprise"
)

// planLimits are each plan's burst limit and budget multiplier.
var planLimits = map[Plan]struct{ burst, multiplier int }{
	PlanEssential:    {80, 1},
	PlanAdvanced:     {160, 2},
	PlanProfessional: {400, 5},
	PlanEnterprise:   {480, 7},
}

// Budget and burst constants from the developer docs.
const (
	// BaseDailyTokens is the daily token budget per seat before the plan's multiplier.
	BaseDailyTokens = 30000
	// DefaultSearchRateLimit is the burst limit of search calls per token and window.
	DefaultSearchRateLimit = 10
	// DefaultBlockAfter, DefaultBlockWindow and DefaultBlockFor: a token answered
	// DefaultBlockAfter 429s within DefaultBlockWindow is answered Cloudflare's 403 block page
	// for DefaultBlockFor.
	DefaultBlockAfter  = 40
	DefaultBlockWindow = 10 * time.Second
	DefaultBlockFor    = time.Minute
)

// Call costs in budget tokens, by kind of call, for v1; v2 endpoints cost half (rounded up).
// The table is pderrors' (the worker counts its spending with it): one fact in one place.
const (
	CostGetOne = pderrors.CostGetOne
	CostList   = pderrors.CostList
	CostUpdate = pderrors.CostUpdate
	CostSearch = pderrors.CostSearch
)

// CallCost is what method path costs of the company's daily token budget: a search 40, a list
// 20, a change (POST, PUT, PATCH, DELETE) 10, one item 2; an /api/v2/ path half of that,
// rounded up (pderrors.CallCost).
func CallCost(method, path string) int { return pderrors.CallCost(method, path) }

// isSearch reports whether path is a search endpoint (/…/search, /api/v1/itemSearch), which
// has a burst window of its own.
func isSearch(path string) bool {
	return strings.HasSuffix(path, "/search") || strings.Contains(path, "/itemSearch")
}

// AccountState is the state of a company's account as the API answers it.
type AccountState string

// The account states.
const (
	// AccountOpen: calls are served.
	AccountOpen AccountState = "open"
	// AccountPaymentRequired: every call is answered 402 (the account is not open).
	AccountPaymentRequired AccountState = "payment_required"
	// AccountFeatureCapped: every call is answered 403 with code feature_capping_deals_limit.
	AccountFeatureCapped AccountState = "feature_capped"
	// AccountFeatureDisabled: every call is answered 415 (feature not enabled).
	AccountFeatureDisabled AccountState = "feature_disabled"
)

// Messages and codes of the account-state answers.
const (
	MsgPaymentRequired    = "Company account is not open"
	MsgFeatureCapped      = "Open deals limit reached"
	CodeFeatureCapped     = "feature_capping_deals_limit"
	MsgFeatureNotEnabled  = "Feature not enabled"
	MsgUnauthorizedAccess = "unauthorized access"
	// CodeSchemaValidation is the code of a v2 validation error.
	CodeSchemaValidation = "ERR_SCHEMA_VALIDATION_FAILED"
)

// cloudflareBlockPage is the HTML page Cloudflare answers a blocked client with.
const cloudflareBlockPage = `<!DOCTYPE html>
<html lang="en-US"><head><title>Attention Required! | Cloudflare</title></head>
<body><h1>Sorry, you have been blocked</h1><h2>You are unable to access pipedrive.com</h2>
<p>This website is using a security service to protect itself from online attacks.</p></body></html>
`

// SetAccountState sets how the API answers every call of companyID's tokens from now on.
func (s *Server) SetAccountState(companyID int64, st AccountState) error {
	switch st {
	case AccountOpen, AccountPaymentRequired, AccountFeatureCapped, AccountFeatureDisabled:
	default:
		return fmt.Errorf("pdsim: unknown account state %q", st)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == AccountOpen {
		delete(s.accounts, companyID)
	} else {
		s.accounts[companyID] = st
	}
	return nil
}

// Budget is one company's daily token budget as the simulator counts it.
type Budget struct {
	CompanyID int64 `json:"company_id"`
	// Limit is the day's budget; 0 when no budget is configured.
	Limit int `json:"limit"`
	// Remaining is what is left today (never below 0).
	Remaining int `json:"remaining"`
	// ResetsAt is the next midnight in Config.ServerTimezone.
	ResetsAt time.Time `json:"resets_at"`
}

// CompanyBudget returns companyID's budget as of now.
func (s *Server) CompanyBudget(companyID int64) Budget {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	b := Budget{CompanyID: companyID, ResetsAt: s.nextMidnight(now)}
	if limit := s.budgetLimit(); limit > 0 {
		b.Limit, b.Remaining = limit, max(limit-s.spentLocked(companyID, now), 0)
	}
	return b
}

// SpendBudget charges tokens to companyID's budget for today (a negative amount gives tokens
// back), as if other apps and users of the company had called: SpendBudget(id, 1<<30) spends
// the whole day.
func (s *Server) SpendBudget(companyID int64, tokens int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	d := s.dayLocked(companyID, now)
	d.spent = max(d.spent+tokens, 0)
	if limit := s.budgetLimit(); limit > 0 {
		d.spent = min(d.spent, limit) // a spent day stays spent, and gives back from there
	}
}

// budgetLimit is the configured daily budget in tokens, 0 when off.
func (s *Server) budgetLimit() int {
	switch {
	case s.cfg.DailyBudget > 0:
		return s.cfg.DailyBudget
	case !s.cfg.TokenBudget:
		return 0
	}
	return BaseDailyTokens*planLimits[s.cfg.Plan].multiplier*s.cfg.Seats + s.cfg.TopUpTokens
}

// dailySpend is one company's spend on one day of the server's timezone.
type dailySpend struct {
	day   string
	spent int
}

// dayLocked returns companyID's spend record for now's day, starting a new day at the
// server's midnight.
func (s *Server) dayLocked(companyID int64, now time.Time) *dailySpend {
	day := now.In(s.cfg.ServerTimezone).Format(time.DateOnly)
	d := s.daily[companyID]
	if d == nil || d.day != day {
		d = &dailySpend{day: day}
		s.daily[companyID] = d
	}
	return d
}

func (s *Server) spentLocked(companyID int64, now time.Time) int {
	return s.dayLocked(companyID, now).spent
}

// nextMidnight is the next midnight after now in the server's timezone.
func (s *Server) nextMidnight(now time.Time) time.Time {
	l := now.In(s.cfg.ServerTimezone)
	y, m, d := l.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, s.cfg.ServerTimezone)
}

// window is a rolling window of one token's calls of one kind.
type window struct {
	calls []time.Time // ascending
	// penaltyUntil: every call before it is refused (Config.BurstPenalty after going over).
	penaltyUntil time.Time
}

// prune drops calls at or before now-size.
func (w *window) prune(now time.Time, size time.Duration) {
	cut := 0
	for cut < len(w.calls) && !w.calls[cut].After(now.Add(-size)) {
		cut++
	}
	w.calls = w.calls[cut:]
}

// reset is how long until the oldest call leaves the window (the window's size when empty).
func (w *window) reset(now time.Time, size time.Duration) time.Duration {
	if len(w.calls) == 0 {
		return size
	}
	return w.calls[0].Add(size).Sub(now)
}

// tokenLimits is one access token's burst state.
type tokenLimits struct {
	general, search window
	// rejected are the times of recent 429s, for the Cloudflare escalation.
	rejected     []time.Time
	blockedUntil time.Time
}

// rateVerdict is the outcome of the limit checks for one request.
type rateVerdict struct {
	limit, remaining int
	reset            time.Duration
	// penalty is the time left of the window's burst penalty (a 429's Retry-After), 0 if none.
	penalty       time.Duration
	budget        bool // a daily budget is configured
	budgetLimit   int
	budgetLeft    int
	budgetHeaders bool
	overLimit     bool
	overBudget    bool
	blocked       bool
	account       AccountState
}

// setHeaders writes the rate-limit headers: the burst window's always, the budget's when a
// budget is configured and this answer carries them. Retry-After only on a burst 429 with its
// penalty (the spent budget's 429 has none: Pipedrive documents none).
func (v rateVerdict) setHeaders(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(v.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(v.remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(ceilSeconds(v.reset)))
	if v.penalty > 0 {
		h.Set("Retry-After", strconv.Itoa(ceilSeconds(v.penalty)))
	}
	if v.budget && v.budgetHeaders {
		h.Set("X-Daily-Ratelimit-Token-Limit", strconv.Itoa(v.budgetLimit))
		h.Set("X-Daily-Ratelimit-Token-Remaining", strconv.Itoa(v.budgetLeft))
	}
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// rateLocked decides one request of token tok: Cloudflare's block, the account's state, the
// company's daily budget (served while any is left, the call's whole cost charged), then the
// token's rolling window for the call's kind (search or not), whose burst penalty refuses
// every call for Config.BurstPenalty once one went over. A refused call charges neither the
// window nor the budget; a 429 counts toward the Cloudflare block.
func (s *Server) rateLocked(tok string, at *accessToken, method, path string, now time.Time) rateVerdict {
	tl := s.limits[tok]
	if tl == nil {
		tl = &tokenLimits{}
		s.limits[tok] = tl
	}
	if now.Before(tl.blockedUntil) {
		return rateVerdict{blocked: true}
	}
	w, limit := &tl.general, s.cfg.RateLimit
	if isSearch(path) {
		w, limit = &tl.search, s.cfg.SearchRateLimit
	}
	w.prune(now, s.cfg.RateWindow)
	v := rateVerdict{limit: limit, remaining: max(limit-len(w.calls), 0), reset: w.reset(now, s.cfg.RateWindow)}
	if now.Before(w.penaltyUntil) {
		v.remaining, v.penalty = 0, w.penaltyUntil.Sub(now)
		v.reset = v.penalty
	}
	if st, ok := s.accounts[at.companyID]; ok {
		v.account = st
		return v
	}
	if bl := s.budgetLimit(); bl > 0 {
		d := s.dayLocked(at.companyID, now)
		v.budget, v.budgetLimit, v.budgetLeft = true, bl, max(bl-d.spent, 0)
		v.budgetHeaders = s.cfg.BudgetHeadersOmitted <= 0 || s.rng.Float64() >= s.cfg.BudgetHeadersOmitted
		if v.budgetLeft <= 0 {
			v.overBudget = true
			return v
		}
		if len(w.calls) < limit && v.penalty == 0 {
			d.spent += CallCost(method, path)
			v.budgetLeft = max(bl-d.spent, 0)
		}
	}
	if v.penalty > 0 {
		v.overLimit = true
		s.noteRejectedLocked(tl, now)
		return v
	}
	if len(w.calls) >= limit {
		v.overLimit = true
		if s.cfg.BurstPenalty > 0 {
			w.penaltyUntil = now.Add(s.cfg.BurstPenalty)
			v.remaining, v.penalty, v.reset = 0, s.cfg.BurstPenalty, s.cfg.BurstPenalty
		}
		s.noteRejectedLocked(tl, now)
		return v
	}
	w.calls = append(w.calls, now)
	v.remaining = limit - len(w.calls)
	v.reset = w.reset(now, s.cfg.RateWindow)
	return v
}

// noteRejectedLocked records a 429 and blocks the token when they kept coming.
func (s *Server) noteRejectedLocked(tl *tokenLimits, now time.Time) {
	if s.cfg.BlockAfter < 0 {
		return
	}
	cut := 0
	for cut < len(tl.rejected) && !tl.rejected[cut].After(now.Add(-s.cfg.BlockWindow)) {
		cut++
	}
	tl.rejected = append(tl.rejected[cut:], now)
	if len(tl.rejected) >= s.cfg.BlockAfter {
		tl.blockedUntil, tl.rejected = now.Add(s.cfg.BlockFor), nil
	}
}

// writeLimited answers a request the limits refused; it reports whether it did.
func (s *Server) writeLimited(w http.ResponseWriter, g grant, v rateVerdict) bool {
	switch {
	case v.blocked:
		s.log.Info("api rejected", "action", "api", "company_id", g.companyID, "user_id", g.userID, "reason", "blocked_by_edge", "status", http.StatusForbidden)
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.Header().Set("Cf-Mitigated", "challenge")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(cloudflareBlockPage))
		return true
	case v.account == AccountPaymentRequired:
		writeJSON(w, http.StatusPaymentRequired, apiErrorBody{Error: MsgPaymentRequired, ErrorCode: http.StatusPaymentRequired, ErrorInfo: ErrorInfo})
		return true
	case v.account == AccountFeatureCapped:
		writeJSON(w, http.StatusForbidden, apiErrorBody{Error: MsgFeatureCapped, Code: CodeFeatureCapped, ErrorCode: http.StatusForbidden, ErrorInfo: ErrorInfo})
		return true
	case v.account == AccountFeatureDisabled:
		writeJSON(w, http.StatusUnsupportedMediaType, apiErrorBody{Error: MsgFeatureNotEnabled, ErrorCode: http.StatusUnsupportedMediaType, ErrorInfo: ErrorInfo})
		return true
	case v.overBudget:
		s.log.Info("api rejected", "action", "api", "company_id", g.companyID, "user_id", g.userID, "reason", "daily_budget", "status", http.StatusTooManyRequests)
		writeAPIError(w, http.StatusTooManyRequests, MsgDailyBudgetExceeded)
		return true
	case v.overLimit:
		s.log.Debug("api rejected", "action", "api", "company_id", g.companyID, "user_id", g.userID, "reason", "rate_limit", "status", http.StatusTooManyRequests)
		writeAPIError(w, http.StatusTooManyRequests, MsgRequestOverLimit)
		return true
	}
	return false
}
