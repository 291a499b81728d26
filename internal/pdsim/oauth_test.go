package pdsim

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestTokenErrors covers every /oauth/token row of the status-code page, message for message.
func TestTokenErrors(t *testing.T) {
	s := newSim(t, Config{})
	redirect := s.cfg.RedirectURI
	apiTok := s.AddAPIToken(s.cfg.UserID)
	s.postForm("/oauth/token", url.Values{"grant_type": {"exchange_api_token"}, "api_token": {apiTok}})

	tests := []struct {
		name        string
		contentType string
		auth        [2]string // Basic id, secret; empty means none
		form        url.Values
		status      int
		msg, code   string
	}{
		{"missing grant_type", "", [2]string{}, url.Values{}, 400, MsgMissingGrantType, ErrCodeInvalidRequest},
		{"unsupported grant_type", "", [2]string{}, url.Values{"grant_type": {"password"}}, 400, MsgUnsupportedGrantType, ErrCodeUnsupportedGrantType},
		{"unknown code", "", [2]string{}, url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "redirect_uri": {redirect}}, 400, MsgAuthCodeInvalid, ErrCodeInvalidGrant},
		{"missing code", "", [2]string{}, url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {redirect}}, 400, MsgAuthCodeInvalid, ErrCodeInvalidGrant},
		{"unknown refresh token", "", [2]string{}, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"1:2:nope"}}, 400, MsgRefreshTokenInvalid, ErrCodeInvalidGrant},
		{"unknown api token", "", [2]string{}, url.Values{"grant_type": {"exchange_api_token"}, "api_token": {"nope"}}, 400, MsgAPITokenInvalid, ErrCodeInvalidGrant},
		{"api token exchanged twice", "", [2]string{}, url.Values{"grant_type": {"exchange_api_token"}, "api_token": {apiTok}}, 400, MsgAPITokenInvalid, ErrCodeInvalidGrant},
		{"no client credentials", "", [2]string{"-", "-"}, url.Values{"grant_type": {"refresh_token"}}, 400, MsgClientCredentialsMissing, ErrCodeInvalidClient},
		{"only client_id in body", "", [2]string{"-", "-"}, url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultClientID}}, 400, MsgClientCredentialsMissing, ErrCodeInvalidClient},
		{"wrong client secret", "", [2]string{DefaultClientID, "wrong"}, url.Values{"grant_type": {"refresh_token"}}, 401, MsgClientInvalid, ""},
		{"wrong client id", "", [2]string{"other", DefaultClientSecret}, url.Values{"grant_type": {"refresh_token"}}, 401, MsgClientInvalid, ""},
		{"wrong secret in body", "", [2]string{"-", "-"}, url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultClientID}, "client_secret": {"x"}}, 401, MsgClientInvalid, ""},
		{"missing redirect_uri", "", [2]string{}, url.Values{"grant_type": {"authorization_code"}, "code": {"c"}}, 400, MsgRedirectURINotValid, ErrCodeInvalidRequest},
		{"relative redirect_uri", "", [2]string{}, url.Values{"grant_type": {"authorization_code"}, "code": {"c"}, "redirect_uri": {"/callback"}}, 400, MsgRedirectURINotValid, ErrCodeInvalidRequest},
		{"other redirect_uri", "", [2]string{}, url.Values{"grant_type": {"authorization_code"}, "code": {"c"}, "redirect_uri": {"https://evil.example/cb"}}, 400, MsgRedirectURIInvalid, ErrCodeInvalidRequest},
		{"json content type", "application/json", [2]string{}, url.Values{"grant_type": {"refresh_token"}}, 400, MsgContentType, ErrCodeInvalidRequest},
		{"no content type", "-", [2]string{}, url.Values{"grant_type": {"refresh_token"}}, 400, MsgContentType, ErrCodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(tt.form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			switch tt.contentType {
			case "":
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			case "-":
			default:
				req.Header.Set("Content-Type", tt.contentType)
			}
			switch tt.auth[0] {
			case "":
				req.SetBasicAuth(DefaultClientID, DefaultClientSecret)
			case "-":
			default:
				req.SetBasicAuth(tt.auth[0], tt.auth[1])
			}
			r := do(t, req)
			wantOAuthError(t, r, tt.status, tt.msg, tt.code)
			if tt.status == http.StatusUnauthorized {
				if got := r.header.Get("Www-Authenticate"); got != `Basic realm="Service"` {
					t.Errorf("www-authenticate = %q, want %q", got, `Basic realm="Service"`)
				}
			}
		})
	}
}

// TestTokenSuccessShape checks a token response field by field.
func TestTokenSuccessShape(t *testing.T) {
	s := newSim(t, Config{Scopes: []string{"base", "deals:read"}})
	tok := s.install()
	if !strings.HasPrefix(tok.AccessToken, "v1u:") || len(tok.AccessToken) < 40 {
		t.Errorf("access_token = %q, want v1u: followed by random text", tok.AccessToken)
	}
	wantPrefix := strconv.FormatInt(DefaultCompanyID, 10) + ":" + strconv.FormatInt(DefaultUserID, 10) + ":"
	if !strings.HasPrefix(tok.RefreshToken, wantPrefix) {
		t.Errorf("refresh_token = %q, want prefix %q", tok.RefreshToken, wantPrefix)
	}
	if tok.TokenType != "Bearer" || tok.ExpiresIn != 3599 || tok.Scope != "base,deals:read" || tok.APIDomain != s.URL {
		t.Errorf("token = %+v, want Bearer, 3599, base,deals:read, api_domain %s", tok, s.URL)
	}
	other := s.install()
	if other.AccessToken == tok.AccessToken || other.RefreshToken == tok.RefreshToken {
		t.Errorf("two installs returned the same tokens")
	}
}

// TestExpiresInFromConfig checks that expires_in follows AccessTokenTTL and the token expires.
func TestExpiresInFromConfig(t *testing.T) {
	s := newSim(t, Config{AccessTokenTTL: 3600 * time.Second})
	tok := s.install()
	if tok.ExpiresIn != 3600 {
		t.Errorf("expires_in = %d, want 3600", tok.ExpiresIn)
	}
	s.clock.Advance(3599 * time.Second)
	if r := s.api("GET", "/api/v1/users/me", tok.AccessToken, nil); r.status != 200 {
		t.Fatalf("GET users/me at 3599 s = %d, want 200", r.status)
	}
	s.clock.Advance(time.Second)
	wantAPIError(t, s.api("GET", "/api/v1/users/me", tok.AccessToken, nil), 401, MsgAccessTokenInvalid)
}

// TestCredentialsInBody checks that client credentials in the form body are accepted.
func TestCredentialsInBody(t *testing.T) {
	s := newSim(t, Config{})
	code := s.IssueCode(0, s.cfg.RedirectURI)
	r := s.postFormAuth("/oauth/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.cfg.RedirectURI},
		"client_id": {s.cfg.ClientID}, "client_secret": {s.cfg.ClientSecret},
	}, "", "")
	s.token(r)
}

// TestCodeSingleUse checks that a code works once and then is invalid.
func TestCodeSingleUse(t *testing.T) {
	s := newSim(t, Config{})
	code := s.IssueCode(0, s.cfg.RedirectURI)
	s.exchangeCode(code)
	r := s.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.cfg.RedirectURI}})
	wantOAuthError(t, r, 400, MsgAuthCodeInvalid, ErrCodeInvalidGrant)
	// Used even after it would have expired, it stays "invalid", not "expired".
	s.clock.Advance(time.Hour)
	r = s.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.cfg.RedirectURI}})
	wantOAuthError(t, r, 400, MsgAuthCodeInvalid, ErrCodeInvalidGrant)
	inst := strconv.FormatInt(DefaultCompanyID, 10) + ":" + strconv.FormatInt(DefaultUserID, 10)
	if c := s.Counters(); c.TokenByInstallation[inst] != 3 || c.TokenErrors[MsgAuthCodeInvalid] != 2 {
		t.Errorf("counters = %v / %v, want 3 calls for %s and 2 invalid-code errors", c.TokenByInstallation, c.TokenErrors, inst)
	}
}

// TestCodeBoundToRedirect checks that a code issued for another redirect URI is refused.
func TestCodeBoundToRedirect(t *testing.T) {
	s := newSim(t, Config{})
	code := s.IssueCode(0, "https://elsewhere.example/cb")
	r := s.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.cfg.RedirectURI}})
	wantOAuthError(t, r, 400, MsgRedirectURIInvalid, ErrCodeInvalidRequest)
	if got := s.IssueCode(424242, s.cfg.RedirectURI); got != "" {
		t.Errorf("IssueCode(unknown user) = %q, want empty", got)
	}
}

// TestCodeExpiry checks the 5-minute code lifetime on the fake clock.
func TestCodeExpiry(t *testing.T) {
	tests := []struct {
		name    string
		age     time.Duration
		wantMsg string
	}{
		{"just in time", 5*time.Minute - time.Second, ""},
		{"at five minutes", 5 * time.Minute, MsgAuthCodeExpired},
		{"an hour later", time.Hour, MsgAuthCodeExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, Config{})
			code := s.IssueCode(0, s.cfg.RedirectURI)
			s.clock.Advance(tt.age)
			r := s.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.cfg.RedirectURI}})
			if tt.wantMsg == "" {
				s.token(r)
				return
			}
			wantOAuthError(t, r, 400, tt.wantMsg, ErrCodeInvalidGrant)
		})
	}
}

// TestCodeTTLConfigured checks a custom CodeTTL.
func TestCodeTTLConfigured(t *testing.T) {
	s := newSim(t, Config{CodeTTL: time.Minute})
	code := s.IssueCode(0, s.cfg.RedirectURI)
	s.clock.Advance(time.Minute)
	r := s.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.cfg.RedirectURI}})
	wantOAuthError(t, r, 400, MsgAuthCodeExpired, ErrCodeInvalidGrant)
}

// TestRefreshRotation checks both refresh behaviours.
func TestRefreshRotation(t *testing.T) {
	t.Run("rotate", func(t *testing.T) {
		s := newSim(t, Config{RotateRefreshTokens: true})
		first := s.install()
		second := s.refreshToken(first.RefreshToken)
		if second.RefreshToken == first.RefreshToken {
			t.Fatalf("refresh_token not rotated")
		}
		if second.AccessToken == first.AccessToken {
			t.Errorf("access_token not renewed")
		}
		r := s.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}})
		wantOAuthError(t, r, 400, MsgRefreshTokenInvalid, ErrCodeInvalidGrant)
		third := s.refreshToken(second.RefreshToken)
		if r := s.api("GET", "/api/v1/users/me", third.AccessToken, nil); r.status != 200 {
			t.Errorf("users/me with refreshed token = %d, want 200", r.status)
		}
	})
	t.Run("no rotation", func(t *testing.T) {
		s := newSim(t, Config{RotateRefreshTokens: false})
		first := s.install()
		// Used every 59 days, the same refresh token lives on.
		rt := first.RefreshToken
		for range 3 {
			s.clock.Advance(59 * 24 * time.Hour)
			next := s.refreshToken(rt)
			if next.RefreshToken != rt {
				t.Fatalf("refresh_token = %q, want the same token back", next.RefreshToken)
			}
			if next.AccessToken == first.AccessToken {
				t.Errorf("access_token not renewed")
			}
		}
		// Unused for 60 days, it expires.
		s.clock.Advance(60 * 24 * time.Hour)
		r := s.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		wantOAuthError(t, r, 400, MsgRefreshTokenInvalid, ErrCodeInvalidGrant)
	})
}

// TestAPITokenExchange checks exchange_api_token: tokens once, invalid afterwards.
func TestAPITokenExchange(t *testing.T) {
	s := newSim(t, Config{})
	u := User{ID: 77, CompanyID: 88, CompanyDomain: "beta", Scopes: []string{"base", "deals:full"}}
	if err := s.AddUser(u); err != nil {
		t.Fatal(err)
	}
	apiTok := s.AddAPIToken(77)
	tok := s.token(s.postForm("/oauth/token", url.Values{"grant_type": {"exchange_api_token"}, "api_token": {apiTok}}))
	if !strings.HasPrefix(tok.RefreshToken, "88:77:") || tok.Scope != "base,deals:full" {
		t.Errorf("token = %+v, want refresh 88:77:…, scope base,deals:full", tok)
	}
	me := s.api("GET", "/api/v1/users/me", tok.AccessToken, nil).json(t)["data"].(map[string]any)
	if me["id"] != float64(77) || me["company_id"] != float64(88) {
		t.Errorf("users/me = %v, want id 77 company 88", me)
	}
	r := s.postForm("/oauth/token", url.Values{"grant_type": {"exchange_api_token"}, "api_token": {apiTok}})
	wantOAuthError(t, r, 400, MsgAPITokenInvalid, ErrCodeInvalidGrant)
	if got := s.AddAPIToken(999); got != "" {
		t.Errorf("AddAPIToken(unknown) = %q, want empty", got)
	}
}

// authorize calls /oauth/authorize with params and returns the response (redirects not followed).
func (s *sim) authorize(params url.Values, accept string) response {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.AuthURL()+"?"+params.Encode(), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return do(s.t, req)
}

// TestAuthorize covers the authorize endpoint's answers.
func TestAuthorize(t *testing.T) {
	redirect := DefaultRedirectURI
	ok := url.Values{"client_id": {DefaultClientID}, "redirect_uri": {redirect}, "state": {"s t/ä"}}
	tests := []struct {
		name      string
		mode      AuthorizeMode
		params    url.Values
		accept    string
		status    int
		wantQuery map[string]string // expected redirect query (code "*" = any non-empty)
		wantBody  string            // expected message in the page
	}{
		{"approve", AuthorizeApprove, ok, "", 302, map[string]string{"code": "*", "state": "s t/ä"}, ""},
		{"approve without state", AuthorizeApprove, url.Values{"client_id": {DefaultClientID}, "redirect_uri": {redirect}}, "", 302, map[string]string{"code": "*"}, ""},
		{"approve without redirect_uri", AuthorizeApprove, url.Values{"client_id": {DefaultClientID}}, "", 302, map[string]string{"code": "*"}, ""},
		{"deny", AuthorizeDeny, ok, "", 302, map[string]string{"error": "user_denied", "state": "s t/ä"}, ""},
		{"maintenance", AuthorizeMaintenance, ok, "", 503, nil, MsgMaintenance},
		{"maintenance json", AuthorizeMaintenance, ok, "application/json", 503, nil, MsgMaintenance},
		{"not installable", AuthorizeNotInstallable, ok, "", 400, nil, MsgNotInstallable},
		{"unknown client", AuthorizeApprove, url.Values{"client_id": {"x"}, "redirect_uri": {redirect}}, "", 400, nil, MsgClientInvalid},
		{"unregistered redirect", AuthorizeApprove, url.Values{"client_id": {DefaultClientID}, "redirect_uri": {"https://evil.example/cb"}}, "", 400, nil, MsgRedirectURIInvalid},
		{"invalid redirect", AuthorizeApprove, url.Values{"client_id": {DefaultClientID}, "redirect_uri": {"not a uri"}}, "", 400, nil, MsgRedirectURINotValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, Config{})
			if err := s.SetAuthorizeMode(tt.mode); err != nil {
				t.Fatal(err)
			}
			r := s.authorize(tt.params, tt.accept)
			if r.status != tt.status {
				t.Fatalf("authorize status = %d (%s), want %d", r.status, r.body, tt.status)
			}
			if tt.wantBody != "" {
				if !strings.Contains(string(r.body), tt.wantBody) {
					t.Errorf("authorize body = %s, want it to contain %q", r.body, tt.wantBody)
				}
				if tt.accept == "application/json" && r.json(t)["message"] != tt.wantBody {
					t.Errorf("authorize json = %s, want message %q", r.body, tt.wantBody)
				}
				return
			}
			loc, err := url.Parse(r.header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect {
				t.Errorf("redirect target = %q, want %q", got, redirect)
			}
			q := loc.Query()
			if len(q) != len(tt.wantQuery) {
				t.Errorf("redirect query = %v, want keys of %v", q, tt.wantQuery)
			}
			for k, want := range tt.wantQuery {
				got := q.Get(k)
				if (want == "*" && got == "") || (want != "*" && got != want) {
					t.Errorf("redirect %s = %q, want %q", k, got, want)
				}
			}
			if code := q.Get("code"); code != "" {
				s.exchangeCode(code) // the code from the redirect works
			}
		})
	}
}

// TestMultipleInstallations checks that tokens are bound to the user who approved.
func TestMultipleInstallations(t *testing.T) {
	s := newSim(t, Config{})
	if err := s.AddUser(User{ID: 10, CompanyID: 20, CompanyDomain: "other", Name: "Bo", Email: "bo@other.example"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActingUser(999); err == nil {
		t.Errorf("SetActingUser(unknown) = nil, want error")
	}
	first := s.install()
	if err := s.SetActingUser(10); err != nil {
		t.Fatal(err)
	}
	second := s.install()
	for _, tc := range []struct {
		tok                 Token
		user, company       float64
		domain, companyName string
	}{
		{first, float64(DefaultUserID), float64(DefaultCompanyID), DefaultCompanyDomain, DefaultCompanyName},
		{second, 10, 20, "other", "other"},
	} {
		me := s.api("GET", "/api/v1/users/me", tc.tok.AccessToken, nil).json(t)["data"].(map[string]any)
		if me["id"] != tc.user || me["company_id"] != tc.company || me["company_domain"] != tc.domain || me["company_name"] != tc.companyName {
			t.Errorf("users/me = %v, want user %v company %v domain %s", me, tc.user, tc.company, tc.domain)
		}
	}
	if !strings.HasPrefix(second.RefreshToken, "20:10:") {
		t.Errorf("refresh_token = %q, want prefix 20:10:", second.RefreshToken)
	}
}

// TestRevoke covers RFC 7009 revocation of access and refresh tokens.
func TestRevoke(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install()

	// Unknown token: 200, nothing happens.
	if r := s.postForm("/oauth/revoke", url.Values{"token": {"unknown"}}); r.status != 200 {
		t.Errorf("revoke unknown = %d, want 200", r.status)
	}
	wantOAuthError(t, s.postForm("/oauth/revoke", url.Values{}), 400, MsgMissingToken, ErrCodeInvalidRequest)
	wantOAuthError(t, s.postFormAuth("/oauth/revoke", url.Values{"token": {tok.AccessToken}}, DefaultClientID, "bad"), 401, MsgClientInvalid, "")
	wantOAuthError(t, s.postFormAuth("/oauth/revoke", url.Values{"token": {tok.AccessToken}}, "", ""), 400, MsgClientCredentialsMissing, ErrCodeInvalidClient)

	// Revoking the access token kills it, not the refresh token.
	if r := s.postForm("/oauth/revoke", url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}); r.status != 200 {
		t.Fatalf("revoke access = %d, want 200", r.status)
	}
	wantAPIError(t, s.api("GET", "/api/v1/users/me", tok.AccessToken, nil), 401, MsgAccessTokenInvalid)
	next := s.refreshToken(tok.RefreshToken)

	// Revoking the refresh token uninstalls: every token of the user dies, webhooks go.
	hook := map[string]any{"subscription_url": "https://app.example/hook", "event_action": "*", "event_object": "deal", "name": "h"}
	if r := s.api("POST", "/api/v1/webhooks", next.AccessToken, hook); r.status != 201 {
		t.Fatalf("create webhook = %d, want 201", r.status)
	}
	if r := s.postForm("/oauth/revoke", url.Values{"token": {next.RefreshToken}, "token_type_hint": {"refresh_token"}}); r.status != 200 {
		t.Fatalf("revoke refresh = %d, want 200", r.status)
	}
	wantAPIError(t, s.api("GET", "/api/v1/users/me", next.AccessToken, nil), 401, MsgAccessTokenInvalid)
	wantOAuthError(t, s.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.RefreshToken}}), 400, MsgRefreshTokenInvalid, ErrCodeInvalidGrant)
	if got := s.Webhooks(DefaultUserID); len(got) != 0 {
		t.Errorf("webhooks after uninstall = %d, want 0", len(got))
	}
	if c := s.Counters(); c.Revokes != 4 || c.RevokeErrors[MsgMissingToken] != 1 || c.RevokeErrors[MsgClientInvalid] != 1 {
		t.Errorf("counters revokes = %d, errors %v; want 4 and one missing token, one invalid client", c.Revokes, c.RevokeErrors)
	}
}

// TestOAuth2Library runs the flow with golang.org/x/oauth2, the client the kit is built on.
func TestOAuth2Library(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		t.Run("rotate="+strconv.FormatBool(rotate), func(t *testing.T) {
			s := newSim(t, Config{RotateRefreshTokens: rotate})
			conf := &oauth2.Config{
				ClientID:     s.cfg.ClientID,
				ClientSecret: s.cfg.ClientSecret,
				RedirectURL:  s.cfg.RedirectURI,
				Endpoint:     oauth2.Endpoint{AuthURL: s.AuthURL(), TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader},
			}
			r := do(t, mustRequest(t, "GET", conf.AuthCodeURL("xyz"), nil))
			loc, err := url.Parse(r.header.Get("Location"))
			if err != nil || loc.Query().Get("state") != "xyz" {
				t.Fatalf("authorize redirect = %q (%v), want state xyz", r.header.Get("Location"), err)
			}
			ctx := context.Background()
			tok, err := conf.Exchange(ctx, loc.Query().Get("code"))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if tok.Extra("api_domain") != s.URL {
				t.Errorf("api_domain = %v, want %s", tok.Extra("api_domain"), s.URL)
			}
			if d := time.Until(tok.Expiry); d < 3500*time.Second || d > 3600*time.Second {
				t.Errorf("expiry in %v, want about 3599 s", d)
			}
			// Force a refresh through the library.
			tok.Expiry = time.Now().Add(-time.Minute)
			fresh, err := conf.TokenSource(ctx, tok).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if fresh.AccessToken == tok.AccessToken {
				t.Errorf("refresh returned the old access token")
			}
			if rotate == (fresh.RefreshToken == tok.RefreshToken) {
				t.Errorf("rotate=%v: refresh token changed = %v", rotate, fresh.RefreshToken != tok.RefreshToken)
			}
			// A bad secret surfaces as *oauth2.RetrieveError with Pipedrive's 401.
			bad := *conf
			bad.ClientSecret = "wrong"
			_, err = bad.Exchange(ctx, s.IssueCode(0, s.cfg.RedirectURI))
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.Response.StatusCode != 401 {
				t.Errorf("Exchange with bad secret error = %v, want RetrieveError 401", err)
			}
		})
	}
}

// mustRequest builds a request or fails the test.
func mustRequest(t *testing.T, method, u string, body *strings.Reader) *http.Request {
	t.Helper()
	var req *http.Request
	var err error
	if body == nil {
		req, err = http.NewRequest(method, u, nil)
	} else {
		req, err = http.NewRequest(method, u, body)
	}
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestTokenFormat checks that tokens are opaque random text, not derived from a counter.
func TestTokenFormat(t *testing.T) {
	s := newSim(t, Config{})
	at := regexp.MustCompile(`^v1u:[A-Za-z0-9_-]{64}$`)
	rt := regexp.MustCompile(`^\d+:\d+:[A-Za-z0-9_-]{40}$`)
	seen := map[string]bool{}
	for range 20 {
		tok := s.install()
		if !at.MatchString(tok.AccessToken) || !rt.MatchString(tok.RefreshToken) {
			t.Fatalf("tokens %q / %q do not match the expected shapes", tok.AccessToken, tok.RefreshToken)
		}
		if seen[tok.AccessToken] {
			t.Fatalf("access token repeated")
		}
		seen[tok.AccessToken] = true
	}
}
