package pdsim

import (
	"encoding/base64"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxFormBytes bounds request bodies on the OAuth endpoints.
const maxFormBytes = 1 << 20

// handleAuthorize serves GET /oauth/authorize: it checks client_id and redirect_uri, then
// answers according to the authorize mode.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.cfg.ClientID {
		s.countAuthorize("invalid_client")
		writePage(w, r, http.StatusBadRequest, MsgClientInvalid, ErrCodeInvalidClient)
		return
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" {
		// RFC 6749 §4.1.1: optional when exactly one URI is registered.
		redirect = s.cfg.RedirectURI
	}
	target, err := url.Parse(redirect)
	if err != nil || !validRedirect(target) {
		s.countAuthorize("redirect_uri_not_valid")
		writePage(w, r, http.StatusBadRequest, MsgRedirectURINotValid, ErrCodeInvalidRequest)
		return
	}
	if redirect != s.cfg.RedirectURI {
		// Never redirect to an unregistered URI: answer here instead.
		s.countAuthorize("redirect_uri_invalid")
		writePage(w, r, http.StatusBadRequest, MsgRedirectURIInvalid, ErrCodeInvalidRequest)
		return
	}

	s.mu.Lock()
	mode := s.mode
	u, ok := s.users[s.acting]
	var code string
	if ok && mode == AuthorizeApprove {
		code = s.issueCodeLocked(u, redirect)
	}
	s.mu.Unlock()

	params := target.Query()
	switch {
	case mode == AuthorizeMaintenance:
		s.countAuthorize("maintenance")
		writePage(w, r, http.StatusServiceUnavailable, MsgMaintenance, "")
		return
	case mode == AuthorizeNotInstallable || !ok:
		s.countAuthorize("not_installable")
		writePage(w, r, http.StatusBadRequest, MsgNotInstallable, "")
		return
	case mode == AuthorizeDeny:
		s.countAuthorize("denied")
		params.Set("error", "user_denied")
	default:
		s.countAuthorize("approved")
		params.Set("code", code)
	}
	if state, has := q["state"]; has {
		params.Set("state", state[0])
	}
	target.RawQuery = params.Encode()
	s.log.Info("authorize", "action", "authorize", "mode", string(mode), "user_id", u.ID, "company_id", u.CompanyID)
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// validRedirect reports whether u is an absolute URI with a host.
func validRedirect(u *url.URL) bool {
	return u.Scheme != "" && u.Host != "" && u.Opaque == ""
}

// tokenRequest holds what the token and revoke endpoints share: a parsed form after the
// content-type and client checks.
type tokenRequest struct {
	form url.Values
}

// parseClientRequest checks the method, Content-Type and client credentials. On failure it has
// answered and returns ok false; msg is the message sent ("" for non-OAuth failures).
func (s *Server) parseClientRequest(w http.ResponseWriter, r *http.Request) (tr tokenRequest, msg string, ok bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, oauthErrorBody{Message: "Method not allowed"})
		return tr, "", false
	}
	// The media type must be exactly x-www-form-urlencoded; parameters such as charset are
	// tolerated because they do not change the encoding.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, "application/x-www-form-urlencoded") {
		s.oauthError(w, http.StatusBadRequest, MsgContentType, ErrCodeInvalidRequest)
		return tr, MsgContentType, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.oauthError(w, http.StatusBadRequest, MsgContentType, ErrCodeInvalidRequest)
		return tr, MsgContentType, false
	}
	id, secret, found := clientCredentials(r)
	if !found {
		s.oauthError(w, http.StatusBadRequest, MsgClientCredentialsMissing, ErrCodeInvalidClient)
		return tr, MsgClientCredentialsMissing, false
	}
	if id != s.cfg.ClientID || secret != s.cfg.ClientSecret {
		// As captured from Pipedrive: 401, a Basic challenge, and no `error` key.
		w.Header().Set("WWW-Authenticate", `Basic realm="Service"`)
		s.oauthError(w, http.StatusUnauthorized, MsgClientInvalid, "")
		return tr, MsgClientInvalid, false
	}
	return tokenRequest{form: r.PostForm}, "", true
}

// clientCredentials reads the client id and secret from HTTP Basic or, failing that, from the
// form body (which Pipedrive also accepts). Basic values are form-decoded per RFC 6749 §2.3.1.
func clientCredentials(r *http.Request) (id, secret string, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Basic") {
			return "", "", false
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return "", "", false
		}
		id, secret, ok = strings.Cut(string(raw), ":")
		if !ok || id == "" || secret == "" {
			return "", "", false
		}
		if v, err := url.QueryUnescape(id); err == nil {
			id = v
		}
		if v, err := url.QueryUnescape(secret); err == nil {
			secret = v
		}
		return id, secret, true
	}
	id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	return id, secret, id != "" && secret != ""
}

// oauthError writes an OAuth error body (error key omitted when code is empty).
func (s *Server) oauthError(w http.ResponseWriter, status int, msg, code string) {
	writeJSON(w, status, oauthErrorBody{Message: msg, Error: code})
}

// handleToken serves POST /oauth/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	tr, msg, ok := s.parseClientRequest(w, r)
	grantType := "(unread)"
	if r.PostForm != nil {
		grantType = grantKey(r.PostForm.Get("grant_type"))
	}
	if !ok {
		if msg != "" {
			s.countToken(grantType, "", msg)
			s.log.Info("token rejected", "action", "token", "grant", grantType, "reason", msg)
		}
		return
	}
	gt := tr.form.Get("grant_type")
	switch gt {
	case "":
		s.tokenFail(w, r, grantType, "", http.StatusBadRequest, MsgMissingGrantType, ErrCodeInvalidRequest)
	case "authorization_code":
		s.grantAuthorizationCode(w, r, tr.form)
	case "refresh_token":
		s.grantRefreshToken(w, r, tr.form)
	case "exchange_api_token":
		s.grantExchangeAPIToken(w, r, tr.form)
	default:
		s.tokenFail(w, r, grantType, "", http.StatusBadRequest, MsgUnsupportedGrantType, ErrCodeUnsupportedGrantType)
	}
}

// grantKey is the counter key for a grant_type value (bounded: unknown values share a key).
func grantKey(gt string) string {
	switch gt {
	case "authorization_code", "refresh_token", "exchange_api_token":
		return gt
	case "":
		return "(missing)"
	}
	return "(unsupported)"
}

// tokenFail counts, logs and writes a token error.
func (s *Server) tokenFail(w http.ResponseWriter, r *http.Request, grantType, installation string, status int, msg, code string) {
	s.countToken(grantType, installation, msg)
	s.log.Info("token rejected", "action", "token", "grant", grantType, "installation", installation, "reason", msg, "status", status)
	s.oauthError(w, status, msg, code)
}

// tokenOK counts, logs and writes a token response.
func (s *Server) tokenOK(w http.ResponseWriter, grantType string, g grant, tok Token) {
	s.countToken(grantType, g.installation(), "")
	s.log.Info("token issued", "action", "token", "grant", grantType, "company_id", g.companyID, "user_id", g.userID, "status", http.StatusOK)
	writeJSON(w, http.StatusOK, tok)
}

// grantAuthorizationCode exchanges a code for tokens.
func (s *Server) grantAuthorizationCode(w http.ResponseWriter, r *http.Request, form url.Values) {
	const gt = "authorization_code"
	redirect := form.Get("redirect_uri")
	if u, err := url.Parse(redirect); redirect == "" || err != nil || !validRedirect(u) {
		s.tokenFail(w, r, gt, "", http.StatusBadRequest, MsgRedirectURINotValid, ErrCodeInvalidRequest)
		return
	}
	if redirect != s.cfg.RedirectURI {
		s.tokenFail(w, r, gt, "", http.StatusBadRequest, MsgRedirectURIInvalid, ErrCodeInvalidRequest)
		return
	}
	s.mu.Lock()
	c, found := s.codes[form.Get("code")]
	switch {
	case !found:
		s.mu.Unlock()
		s.tokenFail(w, r, gt, "", http.StatusBadRequest, MsgAuthCodeInvalid, ErrCodeInvalidGrant)
		return
	case c.used:
		s.mu.Unlock()
		s.tokenFail(w, r, gt, c.installation(), http.StatusBadRequest, MsgAuthCodeInvalid, ErrCodeInvalidGrant)
		return
	case s.nowLocked().Sub(c.issued) >= s.cfg.CodeTTL:
		// An expired code stays known (and expired) rather than becoming "invalid".
		s.mu.Unlock()
		s.tokenFail(w, r, gt, c.installation(), http.StatusBadRequest, MsgAuthCodeExpired, ErrCodeInvalidGrant)
		return
	case c.redirectURI != "" && c.redirectURI != redirect:
		s.mu.Unlock()
		s.tokenFail(w, r, gt, c.installation(), http.StatusBadRequest, MsgRedirectURIInvalid, ErrCodeInvalidRequest)
		return
	}
	c.used = true // single use; kept so a second use is attributed in the counters
	tok := s.issueLocked(r, c.grant)
	s.mu.Unlock()
	s.tokenOK(w, gt, c.grant, tok)
}

// grantRefreshToken exchanges a refresh token for a new access token, rotating the refresh
// token or extending it per Config.RotateRefreshTokens.
func (s *Server) grantRefreshToken(w http.ResponseWriter, r *http.Request, form url.Values) {
	const gt = "refresh_token"
	old := form.Get("refresh_token")
	s.mu.Lock()
	rt, found := s.refresh[old]
	now := s.nowLocked()
	if !found {
		s.mu.Unlock()
		s.tokenFail(w, r, gt, "", http.StatusBadRequest, MsgRefreshTokenInvalid, ErrCodeInvalidGrant)
		return
	}
	if rt.spent || !now.Before(rt.expires) {
		s.mu.Unlock()
		s.tokenFail(w, r, gt, rt.installation(), http.StatusBadRequest, MsgRefreshTokenInvalid, ErrCodeInvalidGrant)
		return
	}
	var tok Token
	if s.cfg.RotateRefreshTokens {
		rt.spent = true
		tok = s.issueLocked(r, rt.grant)
	} else {
		rt.expires = now.Add(s.cfg.RefreshTokenTTL)
		at := "v1u:" + randomText(48)
		s.access[at] = &accessToken{grant: rt.grant, expires: now.Add(s.cfg.AccessTokenTTL)}
		tok = s.tokenResponseLocked(r, rt.grant, at, old)
	}
	g := rt.grant
	s.mu.Unlock()
	s.tokenOK(w, gt, g, tok)
}

// grantExchangeAPIToken exchanges a registered API token (once) for OAuth tokens.
func (s *Server) grantExchangeAPIToken(w http.ResponseWriter, r *http.Request, form url.Values) {
	const gt = "exchange_api_token"
	s.mu.Lock()
	at, found := s.apiTokens[form.Get("api_token")]
	var u User
	if found {
		u, found = s.users[at.userID]
	}
	if !found || at.used {
		s.mu.Unlock()
		s.tokenFail(w, r, gt, "", http.StatusBadRequest, MsgAPITokenInvalid, ErrCodeInvalidGrant)
		return
	}
	at.used = true
	g := s.grantForLocked(u)
	tok := s.issueLocked(r, g)
	s.mu.Unlock()
	s.tokenOK(w, gt, g, tok)
}

// handleRevoke serves POST /oauth/revoke (RFC 7009). Revoking an access token revokes that
// token; revoking a refresh token revokes all of the user's tokens and webhooks (uninstall).
// Unknown tokens answer 200, as RFC 7009 §2.2 says.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	tr, msg, ok := s.parseClientRequest(w, r)
	if !ok {
		if msg != "" {
			s.countRevoke(false, msg)
		}
		return
	}
	tok := tr.form.Get("token")
	if tok == "" {
		s.countRevoke(true, MsgMissingToken)
		s.oauthError(w, http.StatusBadRequest, MsgMissingToken, ErrCodeInvalidRequest)
		return
	}
	s.mu.Lock()
	var installation string
	kind := "unknown"
	tryAccess := func() bool {
		if t, ok := s.access[tok]; ok {
			delete(s.access, tok)
			installation, kind = t.installation(), "access_token"
			return true
		}
		return false
	}
	tryRefresh := func() bool {
		if t, ok := s.refresh[tok]; ok && !t.spent {
			s.revokeUserLocked(t.userID)
			installation, kind = t.installation(), "refresh_token"
			return true
		}
		return false
	}
	// token_type_hint only orders the lookup (RFC 7009 §2.1).
	if tr.form.Get("token_type_hint") == "refresh_token" {
		_ = tryRefresh() || tryAccess()
	} else {
		_ = tryAccess() || tryRefresh()
	}
	s.mu.Unlock()
	s.countRevoke(true, "")
	s.log.Info("revoke", "action", "revoke", "installation", installation, "token_type", kind, "status", http.StatusOK)
	w.WriteHeader(http.StatusOK)
}
