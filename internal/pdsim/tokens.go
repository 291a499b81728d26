package pdsim

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// grant is what a token acts for: one user in one company, with the scopes approved.
type grant struct {
	userID    int64
	companyID int64
	scopes    []string
}

// installation is the counter key "companyID:userID".
func (g grant) installation() string {
	return fmt.Sprintf("%d:%d", g.companyID, g.userID)
}

// hasAny reports whether the grant holds any of the scopes.
func (g grant) hasAny(scopes []string) bool {
	for _, want := range scopes {
		if slices.Contains(g.scopes, want) {
			return true
		}
	}
	return false
}

// authCode is an issued authorization code.
type authCode struct {
	grant
	redirectURI string
	issued      time.Time
	used        bool
}

// accessToken is an issued access token (its rate-limit window is kept per token elsewhere).
type accessToken struct {
	grant
	expires time.Time
}

// refreshToken is an issued refresh token. Spent tokens (rotation on) are kept so that a
// second use is attributed to its installation in the counters, and answered as invalid.
type refreshToken struct {
	grant
	expires time.Time
	spent   bool
}

// apiToken is a registered personal API token, exchangeable once.
type apiToken struct {
	userID int64
	used   bool
}

// Token is a token response, as /oauth/token returns it.
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	APIDomain    string `json:"api_domain"`
}

// randomText returns n random bytes, URL-safe base64 encoded.
func randomText(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never fails on supported platforms (it panics instead).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// grantForLocked builds the grant a user approves (scopes: the user's, else Config.Scopes).
func (s *Server) grantForLocked(u User) grant {
	scopes := u.Scopes
	if len(scopes) == 0 {
		scopes = s.cfg.Scopes
	}
	return grant{userID: u.ID, companyID: u.CompanyID, scopes: slices.Clone(scopes)}
}

// issueLocked mints an access token and a refresh token for g; r (may be nil) is the request
// the api_domain is derived from when no base URL is set.
func (s *Server) issueLocked(r *http.Request, g grant) Token {
	now := s.nowLocked()
	at := "v1u:" + randomText(48)
	s.access[at] = &accessToken{grant: g, expires: now.Add(s.cfg.AccessTokenTTL)}
	rt := fmt.Sprintf("%d:%d:%s", g.companyID, g.userID, randomText(30))
	s.refresh[rt] = &refreshToken{grant: g, expires: now.Add(s.cfg.RefreshTokenTTL)}
	return s.tokenResponseLocked(r, g, at, rt)
}

// tokenResponseLocked renders a token response.
func (s *Server) tokenResponseLocked(r *http.Request, g grant, at, rt string) Token {
	return Token{
		AccessToken:  at,
		TokenType:    "Bearer",
		ExpiresIn:    int(s.cfg.AccessTokenTTL / time.Second),
		RefreshToken: rt,
		Scope:        strings.Join(g.scopes, ","),
		APIDomain:    s.apiDomainLocked(r, g.companyID),
	}
}

// IssueCode returns a fresh authorization code approved by userID (0 means the acting user)
// for redirectURI, as if the user had clicked "allow". The code obeys Config.CodeTTL and is
// single use. It returns "" if the user is not in the directory.
func (s *Server) IssueCode(userID int64, redirectURI string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if userID == 0 {
		userID = s.acting
	}
	u, ok := s.users[userID]
	if !ok {
		return ""
	}
	return s.issueCodeLocked(u, redirectURI)
}

// issueCodeLocked mints a code for u.
func (s *Server) issueCodeLocked(u User, redirectURI string) string {
	code := randomText(24)
	s.codes[code] = &authCode{grant: s.grantForLocked(u), redirectURI: redirectURI, issued: s.nowLocked()}
	return code
}

// IssueToken mints tokens for userID directly, without a token request (for tests of API
// clients that need a valid token). Its api_domain is the base URL ("" until SetBaseURL).
func (s *Server) IssueToken(userID int64) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return Token{}, fmt.Errorf("issue token for user %d: %w", userID, ErrUnknownUser)
	}
	return s.issueLocked(nil, s.grantForLocked(u)), nil
}

// AddAPIToken registers a personal API token for userID and returns it; the token can be
// exchanged for OAuth tokens once (grant_type=exchange_api_token). It returns "" if the user
// is not in the directory.
func (s *Server) AddAPIToken(userID int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return ""
	}
	tok := strings.ToLower(strings.NewReplacer("-", "0", "_", "1").Replace(randomText(30)))
	s.apiTokens[tok] = &apiToken{userID: userID}
	return tok
}

// RevokeUser revokes every token of userID (in any company) and deletes the user's webhooks,
// as an uninstall does, without sending anything. It returns the number of tokens revoked.
func (s *Server) RevokeUser(userID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokeUserLocked(userID)
}

// revokeUserLocked is RevokeUser under s.mu.
func (s *Server) revokeUserLocked(userID int64) int {
	n := 0
	for k, t := range s.access {
		if t.userID == userID {
			delete(s.access, k)
			n++
		}
	}
	for k, t := range s.refresh {
		if t.userID == userID {
			delete(s.refresh, k)
			if !t.spent {
				n++
			}
		}
	}
	for id, h := range s.webhooks {
		if h.OwnerID == userID {
			delete(s.webhooks, id)
		}
	}
	return n
}

// ExpireAccessTokens makes every access token of userID expired now (refresh tokens stay
// valid), so the next API call answers 401 without moving the clock.
func (s *Server) ExpireAccessTokens(userID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	n := 0
	for _, t := range s.access {
		if t.userID == userID && t.expires.After(now) {
			t.expires = now
			n++
		}
	}
	return n
}
