package pdsim

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// access lists the scopes that allow a resource: any one of read for GET and HEAD, any one of
// write for other methods. Empty lists need no scope.
type access struct {
	read, write []string
}

// The scopes each resource needs.
var (
	baseAccess    = access{read: []string{"base"}, write: []string{"base"}}
	dealsAccess   = access{read: []string{"deals:read", "deals:full"}, write: []string{"deals:full"}}
	personsAccess = access{read: []string{"contacts:read", "contacts:full"}, write: []string{"contacts:full"}}
	// Notes belong to deals and contacts: either family of scopes reaches them.
	notesAccess      = access{read: []string{"deals:read", "deals:full", "contacts:read", "contacts:full"}, write: []string{"deals:full", "contacts:full"}}
	activitiesAccess = access{read: []string{"activities:read", "activities:full"}, write: []string{"activities:full"}}
	webhooksAccess   = access{read: []string{"admin", "webhooks:read", "webhooks:full"}, write: []string{"admin", "webhooks:full"}}
)

// scopesFor returns the scopes of which one is needed for method.
func (a access) scopesFor(method string) []string {
	if method == http.MethodGet || method == http.MethodHead {
		return a.read
	}
	return a.write
}

// principalKey is the context key of the grant an API request acts for.
type principalKey struct{}

// principal returns the grant an authenticated API request acts for.
func principal(r *http.Request) grant {
	g, _ := r.Context().Value(principalKey{}).(grant)
	return g
}

// bearerToken extracts the token of "Authorization: Bearer <token>".
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}

// authed wraps an API handler with Pipedrive's checks, in order: Authorization header (400),
// token (401), daily budget and rate limit (429, with headers on every answer from here on),
// retired path (410), scope (403).
func (s *Server) authed(acc access, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r)
		if !ok {
			s.log.Debug("api rejected", "action", "api", "reason", "malformed_authorization_header", "status", http.StatusBadRequest)
			writeAPIError(w, http.StatusBadRequest, MsgMalformedAuthHeader)
			return
		}
		s.mu.Lock()
		now := s.nowLocked()
		at, found := s.access[tok]
		if !found || !now.Before(at.expires) {
			s.mu.Unlock()
			s.log.Debug("api rejected", "action", "api", "reason", "access_token_invalid", "status", http.StatusUnauthorized)
			writeAPIError(w, http.StatusUnauthorized, MsgAccessTokenInvalid)
			return
		}
		g := at.grant
		verdict := s.rateLocked(at, now)
		s.mu.Unlock()

		verdict.setHeaders(w.Header())
		if verdict.overDaily {
			s.log.Info("api rejected", "action", "api", "company_id", g.companyID, "user_id", g.userID, "reason", "daily_budget", "status", http.StatusTooManyRequests)
			writeAPIError(w, http.StatusTooManyRequests, MsgDailyBudgetExceeded)
			return
		}
		if verdict.overLimit {
			s.log.Debug("api rejected", "action", "api", "company_id", g.companyID, "user_id", g.userID, "reason", "rate_limit", "status", http.StatusTooManyRequests)
			writeAPIError(w, http.StatusTooManyRequests, MsgRequestOverLimit)
			return
		}
		if s.isGone(r.URL.Path) {
			writeAPIError(w, http.StatusGone, MsgGone)
			return
		}
		if need := acc.scopesFor(r.Method); len(need) > 0 && !g.hasAny(need) {
			s.log.Info("api rejected", "action", "api", "company_id", g.companyID, "user_id", g.userID, "reason", "scope_mismatch", "status", http.StatusForbidden)
			writeAPIError(w, http.StatusForbidden, MsgScopeMismatch)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, g)))
	})
}

// rateVerdict is the outcome of the rate checks for one request.
type rateVerdict struct {
	limit, remaining int
	reset            time.Duration
	daily            bool // a daily budget is configured
	dailyLeft        int
	retryAfter       time.Duration
	overLimit        bool
	overDaily        bool
}

// setHeaders writes the rate-limit headers.
func (v rateVerdict) setHeaders(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(v.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(v.remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(ceilSeconds(v.reset)))
	if v.daily {
		h.Set("X-Daily-Requests-Left", strconv.Itoa(v.dailyLeft))
	}
	if v.overDaily {
		h.Set("Retry-After", strconv.Itoa(ceilSeconds(v.retryAfter)))
	}
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// dailyCount is one company's request count on one UTC day.
type dailyCount struct {
	day   string
	count int
}

// rateLocked charges one request to the token's window and its company's daily budget. The
// window opens at the first request after the previous one closed. A request refused by the
// daily budget does not use the window.
func (s *Server) rateLocked(at *accessToken, now time.Time) rateVerdict {
	if at.windowStart.IsZero() || now.Sub(at.windowStart) >= s.cfg.RateWindow || now.Before(at.windowStart) {
		at.windowStart, at.windowCount = now, 0
	}
	v := rateVerdict{limit: s.cfg.RateLimit, reset: at.windowStart.Add(s.cfg.RateWindow).Sub(now)}

	if s.cfg.DailyBudget > 0 {
		v.daily = true
		day := now.UTC().Format(time.DateOnly)
		d := s.daily[at.companyID]
		if d == nil || d.day != day {
			d = &dailyCount{day: day}
			s.daily[at.companyID] = d
		}
		if d.count >= s.cfg.DailyBudget {
			y, m, dd := now.UTC().Date()
			midnight := time.Date(y, m, dd+1, 0, 0, 0, 0, time.UTC)
			v.overDaily, v.retryAfter = true, midnight.Sub(now)
			v.remaining = max(0, s.cfg.RateLimit-at.windowCount)
			return v
		}
		d.count++
		v.dailyLeft = s.cfg.DailyBudget - d.count
	}

	if at.windowCount >= s.cfg.RateLimit {
		v.overLimit = true
		return v
	}
	at.windowCount++
	v.remaining = s.cfg.RateLimit - at.windowCount
	return v
}

// handleUsersMe serves GET /api/v1/users/me.
func (s *Server) handleUsersMe(w http.ResponseWriter, r *http.Request) {
	g := principal(r)
	s.mu.Lock()
	u, ok := s.users[g.userID]
	s.mu.Unlock()
	if !ok {
		writeAPIError(w, http.StatusNotFound, "User not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"success": true,
		"data": map[string]any{
			"id":             u.ID,
			"name":           u.Name,
			"email":          u.Email,
			"company_id":     g.companyID,
			"company_name":   u.CompanyName,
			"company_domain": u.CompanyDomain,
			"is_admin":       1,
			"is_you":         true,
			"active_flag":    true,
			"lang":           1,
			"locale":         "en_US",
			"timezone_name":  "Europe/Tallinn",
		},
	})
}

// handleUnknownAPI answers API paths without a route: 410 is handled in authed, so this is 404.
func (s *Server) handleUnknownAPI(w http.ResponseWriter, r *http.Request) {
	writeAPIError(w, http.StatusNotFound, "Unknown method .")
}

// isGone reports whether path is retired.
func (s *Server) isGone(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gone[path]
}

// AddGonePath makes path (exact) answer 410 Gone, like a retired Pipedrive endpoint.
func (s *Server) AddGonePath(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone[path] = true
}
