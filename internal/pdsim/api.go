package pdsim

import (
	"context"
	"net/http"
	"strings"
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
// token (401), Cloudflare's block of a token that kept calling after 429s (403 page), the
// account's state (402, 403 feature capping, 415), daily budget and burst window (429, with
// the rate-limit headers on every answer from here on), retired path (410), scope (403).
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
			s.writeUnauthorized(w)
			return
		}
		g := at.grant
		verdict := s.rateLocked(tok, at, r.Method, r.URL.Path, now)
		s.mu.Unlock()

		if !verdict.blocked {
			verdict.setHeaders(w.Header())
		}
		if s.writeLimited(w, g, verdict) {
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

// writeUnauthorized answers a bad, expired or unknown access token: the status-code page's
// "Invalid token" body, or with Config.GatewayUnauthorized the live API gateway's answer
// ("unauthorized access", errorCode 401, x-401-by-gw: true).
func (s *Server) writeUnauthorized(w http.ResponseWriter) {
	if !s.cfg.GatewayUnauthorized {
		writeAPIError(w, http.StatusUnauthorized, MsgAccessTokenInvalid)
		return
	}
	w.Header().Set("X-401-By-Gw", "true")
	writeJSON(w, http.StatusUnauthorized, apiErrorBody{Error: MsgUnauthorizedAccess, ErrorCode: http.StatusUnauthorized, ErrorInfo: ErrorInfo})
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
	if s.cfg.V1Retired {
		for _, p := range retiredV1 {
			if path == p || strings.HasPrefix(path, p+"/") {
				return true
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gone[path]
}

// retiredV1 are the v1 collections out of support since 2026-08-01 (Config.V1Retired).
var retiredV1 = []string{"/api/v1/deals", "/api/v1/persons", "/api/v1/organizations", "/api/v1/activities"}

// AddGonePath makes path (exact) answer 410 Gone, like a retired Pipedrive endpoint.
func (s *Server) AddGonePath(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone[path] = true
}
