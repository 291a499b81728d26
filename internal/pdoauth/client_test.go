package pdoauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

const (
	testID     = "client-id"
	testSecret = "s3cr3t+/="
	testCode   = "code-abc-123"
	accessTok  = "v1u:AAAA-access-token"
	refreshTok = "1:1:BBBB-refresh-token"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// newClient starts an httptest server running h and returns a Client pointed at it.
func newClient(t *testing.T, h http.HandlerFunc) *pdoauth.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &pdoauth.Client{
		// The test servers are on loopback; the production policy is tested on its own.
		AllowLoopback: true,
		BaseURL:       srv.URL,
		Credentials:   pdoauth.StaticCredentials(testID, testSecret),
		HTTP:          &http.Client{Timeout: 2 * time.Second},
		Now:           func() time.Time { return t0 },
	}
}

// reply answers every request with status, a JSON content type and body.
func reply(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func okBody(apiDomain string) string {
	return fmt.Sprintf(`{"access_token":%q,"api_domain":%q,"expires_in":3599,"refresh_token":%q,"scope":"base,deals:full,contacts:read","token_type":"Bearer"}`,
		accessTok, apiDomain, refreshTok)
}

// decisionOf asserts err is a *pderrors.Error and returns its Decision.
func decisionOf(t *testing.T, err error) pderrors.Decision {
	t.Helper()
	var pe *pderrors.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v (%T), want a *pderrors.Error", err, err)
	}
	return pe.Decision
}

// assertNoSecrets fails if s contains any token, code or secret used in these tests.
func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{testSecret, testCode, accessTok, refreshTok, "BBBB", "AAAA"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s = %q, contains secret %q", what, s, secret)
		}
	}
}

func TestRequestShape(t *testing.T) {
	tests := []struct {
		name     string
		call     func(c *pdoauth.Client) error
		path     string
		wantForm url.Values
	}{
		{"exchange", func(c *pdoauth.Client) error {
			_, err := c.Exchange(context.Background(), testCode, "https://app.example/callback")
			return err
		}, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {testCode}, "redirect_uri": {"https://app.example/callback"}}},
		{"refresh", func(c *pdoauth.Client) error {
			_, err := c.Refresh(context.Background(), refreshTok)
			return err
		}, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshTok}}},
		{"exchange api token", func(c *pdoauth.Client) error {
			_, err := c.ExchangeAPIToken(context.Background(), "api-token-1")
			return err
		}, "/oauth/token", url.Values{"grant_type": {"exchange_api_token"}, "api_token": {"api-token-1"}}},
		{"revoke", func(c *pdoauth.Client) error {
			return c.Revoke(context.Background(), refreshTok, "refresh_token")
		}, "/oauth/revoke", url.Values{"token": {refreshTok}, "token_type_hint": {"refresh_token"}}},
		{"revoke without hint", func(c *pdoauth.Client) error {
			return c.Revoke(context.Background(), accessTok, "")
		}, "/oauth/revoke", url.Values{"token": {accessTok}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			var gotForm url.Values
			c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				got, gotForm = r, r.PostForm
				reply(200, okBody("https://acme.pipedrive.com"))(w, r)
			})
			if err := tt.call(c); err != nil {
				t.Fatalf("call error = %v", err)
			}
			if got.Method != http.MethodPost || got.URL.Path != tt.path {
				t.Errorf("request = %s %s, want POST %s", got.Method, got.URL.Path, tt.path)
			}
			if ct := got.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q, want application/x-www-form-urlencoded", ct)
			}
			id, secret, ok := got.BasicAuth()
			if !ok || id != testID || secret != url.QueryEscape(testSecret) {
				t.Errorf("BasicAuth() = %q, %q, %v; want %q, %q (form-encoded), true", id, secret, ok, testID, url.QueryEscape(testSecret))
			}
			if gotForm.Has("client_secret") || gotForm.Has("client_id") {
				t.Errorf("form has client credentials in the body: %v", slices.Collect(func(yield func(string) bool) {
					for k := range gotForm {
						if !yield(k) {
							return
						}
					}
				}))
			}
			for k, v := range tt.wantForm {
				if !slices.Equal(gotForm[k], v) {
					t.Errorf("form[%s] = %q, want %q", k, gotForm[k], v)
				}
			}
			if len(gotForm) != len(tt.wantForm) {
				t.Errorf("form has %d keys, want %d", len(gotForm), len(tt.wantForm))
			}
		})
	}
}

func TestExchangeSuccess(t *testing.T) {
	c := newClient(t, reply(200, okBody("https://acme.pipedrive.com/")))
	tok, err := c.Exchange(context.Background(), testCode, "https://app.example/callback")
	if err != nil {
		t.Fatalf("Exchange() error = %v", err)
	}
	want := pdoauth.Token{
		AccessToken: accessTok, RefreshToken: refreshTok, TokenType: "Bearer",
		ExpiresIn: 3599 * time.Second, ExpiresAt: t0.Add(3599 * time.Second),
		Scopes:    []string{"base", "deals:full", "contacts:read"},
		APIDomain: "https://acme.pipedrive.com",
	}
	if tok.AccessToken != want.AccessToken || tok.RefreshToken != want.RefreshToken || tok.TokenType != want.TokenType ||
		tok.ExpiresIn != want.ExpiresIn || !tok.ExpiresAt.Equal(want.ExpiresAt) || !slices.Equal(tok.Scopes, want.Scopes) ||
		tok.APIDomain != want.APIDomain {
		t.Errorf("Exchange() = %+v, want %+v", *tok, want)
	}
}

func TestTokenFieldVariants(t *testing.T) {
	tests := []struct {
		name          string
		body          string
		wantExpiresIn time.Duration
		wantScopes    []string
		wantDomain    string
	}{
		{"expires_in 3600", `{"access_token":"a","expires_in":3600,"scope":"base"}`, time.Hour, []string{"base"}, ""},
		{"expires_in as string", `{"access_token":"a","expires_in":"3599"}`, 3599 * time.Second, nil, ""},
		{"expires_in missing", `{"access_token":"a"}`, pdoauth.FallbackExpiresIn, nil, ""},
		{"expires_in zero", `{"access_token":"a","expires_in":0}`, pdoauth.FallbackExpiresIn, nil, ""},
		{"expires_in garbage", `{"access_token":"a","expires_in":"soon"}`, pdoauth.FallbackExpiresIn, nil, ""},
		{"scope with spaces", `{"access_token":"a","expires_in":60,"scope":" base , deals:read,,"}`, time.Minute, []string{"base", "deals:read"}, ""},
		{"scope space-separated (RFC 6749)", `{"access_token":"a","expires_in":60,"scope":"base deals:read"}`, time.Minute, []string{"base", "deals:read"}, ""},
		{"scope as array", `{"access_token":"a","expires_in":60,"scope":["base","admin"]}`, time.Minute, []string{"base", "admin"}, ""},
		{"scope null", `{"access_token":"a","expires_in":60,"scope":null}`, time.Minute, nil, ""},
		{"api_domain changed", `{"access_token":"a","expires_in":60,"api_domain":"https://new-company.pipedrive.com"}`, time.Minute, nil, "https://new-company.pipedrive.com"},
		{"unknown fields ignored", `{"access_token":"a","expires_in":60,"success":true,"extra":{"x":1}}`, time.Minute, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, reply(200, tt.body))
			tok, err := c.Exchange(context.Background(), testCode, "https://app.example/cb")
			if err != nil {
				t.Fatalf("Exchange() error = %v", err)
			}
			if tok.ExpiresIn != tt.wantExpiresIn || !tok.ExpiresAt.Equal(t0.Add(tt.wantExpiresIn)) {
				t.Errorf("ExpiresIn, ExpiresAt = %v, %v; want %v, %v", tok.ExpiresIn, tok.ExpiresAt, tt.wantExpiresIn, t0.Add(tt.wantExpiresIn))
			}
			if !slices.Equal(tok.Scopes, tt.wantScopes) {
				t.Errorf("Scopes = %q, want %q", tok.Scopes, tt.wantScopes)
			}
			if tok.APIDomain != tt.wantDomain {
				t.Errorf("APIDomain = %q, want %q", tok.APIDomain, tt.wantDomain)
			}
		})
	}
}

func TestRefreshKeepsOldRefreshTokenWhenNoneReturned(t *testing.T) {
	c := newClient(t, reply(200, `{"access_token":"new-access","expires_in":3599,"api_domain":"https://acme.pipedrive.com","token_type":"Bearer"}`))
	tok, err := c.Refresh(context.Background(), refreshTok)
	if err != nil {
		t.Fatalf("Refresh() error = %v", err)
	}
	if tok.RefreshToken != refreshTok || tok.AccessToken != "new-access" {
		t.Errorf("Refresh() tokens = %q, %q; want new-access, the old refresh token", tok.AccessToken, tok.RefreshToken)
	}
}

func TestRefreshReturnsRotatedRefreshToken(t *testing.T) {
	c := newClient(t, reply(200, `{"access_token":"new-access","refresh_token":"rotated","expires_in":3599}`))
	tok, err := c.Refresh(context.Background(), refreshTok)
	if err != nil {
		t.Fatalf("Refresh() error = %v", err)
	}
	if tok.RefreshToken != "rotated" {
		t.Errorf("Refresh().RefreshToken = %q, want rotated", tok.RefreshToken)
	}
}

func TestExchangeWithoutRefreshToken(t *testing.T) {
	c := newClient(t, reply(200, `{"access_token":"a","expires_in":3599}`))
	tok, err := c.Exchange(context.Background(), testCode, "https://app.example/cb")
	if err != nil {
		t.Fatalf("Exchange() error = %v", err)
	}
	if tok.RefreshToken != "" {
		t.Errorf("Exchange().RefreshToken = %q, want empty", tok.RefreshToken)
	}
}

// TestErrorBodies has one row per documented OAuth error (Pipedrive's status-code page and the
// captured answers in pipedrive-facts.md) plus the undocumented shapes a client must survive.
func TestErrorBodies(t *testing.T) {
	basic := []string{"WWW-Authenticate", `Basic realm="Service"`}
	tests := []struct {
		name       string
		status     int
		body       string
		header     []string
		wantAction pderrors.Action
		wantReason pderrors.Reason
	}{
		{"missing grant_type", 400, `{"success":false,"message":"Missing parameter: ` + "`grant_type`" + `","error":"invalid_request"}`, nil, pderrors.DeadLetter, pderrors.ReasonMissingGrantType},
		{"unsupported grant_type", 400, `{"success":false,"message":"Unsupported grant type: ` + "`grant_type`" + ` is invalid","error":"unsupported_grant_type"}`, nil, pderrors.DeadLetter, pderrors.ReasonUnsupportedGrantType},
		{"authorization_code invalid", 400, `{"success":false,"message":"Invalid grant: ` + "`authorization_code`" + ` is invalid","error":"invalid_grant"}`, nil, pderrors.Reauthorize, pderrors.ReasonAuthCodeInvalid},
		{"authorization_code expired", 400, `{"success":false,"message":"Invalid grant: ` + "`authorization_code`" + ` has expired","error":"invalid_grant"}`, nil, pderrors.Reauthorize, pderrors.ReasonAuthCodeExpired},
		{"refresh_token invalid", 400, `{"success":false,"message":"Invalid grant: ` + "`refresh_token`" + ` is invalid","error":"invalid_grant"}`, nil, pderrors.Reauthorize, pderrors.ReasonRefreshTokenInvalid},
		{"refresh token invalid, other wording", 400, `{"success":false,"message":"Invalid grant: refresh token is invalid","error":"invalid_grant"}`, nil, pderrors.Reauthorize, pderrors.ReasonRefreshTokenInvalid},
		{"api_token invalid", 400, `{"success":false,"message":"Invalid grant: ` + "`api_token`" + ` is invalid","error":"invalid_grant"}`, nil, pderrors.Reauthorize, pderrors.ReasonAPITokenInvalid},
		{"client credentials missing", 400, `{"success":false,"message":"Invalid client: cannot retrieve client credentials","error":"invalid_client"}`, nil, pderrors.DeadLetter, pderrors.ReasonClientCredentialsMissing},
		{"client invalid 400", 400, `{"success":false,"message":"Invalid client: client is invalid","error":"invalid_client"}`, nil, pderrors.DeadLetter, pderrors.ReasonClientInvalid},
		{"client invalid 401 as captured", 401, `{"success":false,"message":"Invalid client: client is invalid"}`, basic, pderrors.DeadLetter, pderrors.ReasonClientInvalid},
		{"client invalid 401, empty body", 401, ``, basic, pderrors.DeadLetter, pderrors.ReasonClientInvalid},
		{"redirect_uri not a valid URI", 400, `{"success":false,"message":"Invalid request: ` + "`redirect_uri`" + ` is not a valid URI","error":"invalid_request"}`, nil, pderrors.DeadLetter, pderrors.ReasonRedirectURINotValid},
		{"redirect_uri mismatch", 400, `{"success":false,"message":"Invalid request: ` + "`redirect_uri`" + ` is invalid","error":"invalid_request"}`, nil, pderrors.DeadLetter, pderrors.ReasonRedirectURIMismatch},
		{"wrong content type", 400, `{"success":false,"message":"Invalid request: content must be ` + "`application/x-www-form-urlencoded`" + `","error":"invalid_request"}`, nil, pderrors.DeadLetter, pderrors.ReasonWrongContentType},
		{"success as string, no error key", 400, `{"success":"false","message":"Invalid grant: refresh_token is invalid"}`, nil, pderrors.Reauthorize, pderrors.ReasonRefreshTokenInvalid},
		{"RFC 6749 error_description", 400, `{"error":"invalid_grant","error_description":"Invalid grant: authorization_code has expired"}`, nil, pderrors.Reauthorize, pderrors.ReasonAuthCodeExpired},
		{"invalid_grant, unknown message", 400, `{"error":"invalid_grant"}`, nil, pderrors.Reauthorize, pderrors.ReasonInvalidGrant},
		{"400 without a body", 400, ``, nil, pderrors.DeadLetter, pderrors.ReasonOAuthBadRequest},
		{"500", 500, `{"success":false,"message":"Internal Server Error"}`, nil, pderrors.Retry, pderrors.ReasonServerError},
		{"502 HTML", 502, `<html><body>Bad gateway</body></html>`, []string{"Content-Type", "text/html"}, pderrors.Retry, pderrors.ReasonServerError},
		{"503", 503, `{"success":false}`, nil, pderrors.Retry, pderrors.ReasonUnavailable},
		{"429", 429, `{"success":false,"error":"Request over limit"}`, []string{"Retry-After", "2"}, pderrors.Retry, pderrors.ReasonRateLimited},
		{"403 Cloudflare page", 403, `<!DOCTYPE html><html>blocked</html>`, []string{"Content-Type", "text/html"}, pderrors.Retry, pderrors.ReasonBlocked},
		{"404", 404, `not found`, []string{"Content-Type", "text/plain"}, pderrors.DeadLetter, pderrors.ReasonClientError},
		{"302 redirect is not followed", 302, ``, []string{"Location", "/nowhere"}, pderrors.DeadLetter, pderrors.ReasonUnexpected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, reply(tt.status, tt.body, tt.header...))
			tok, err := c.Refresh(context.Background(), refreshTok)
			if tok != nil || err == nil {
				t.Fatalf("Refresh() = %v, %v; want nil and an error", tok, err)
			}
			d := decisionOf(t, err)
			if d.Action != tt.wantAction || d.Reason != tt.wantReason {
				t.Errorf("Refresh() decision = %v (%s), want %v (%s)", d.Action, d.Reason, tt.wantAction, tt.wantReason)
			}
			if got := pderrors.DecisionOf(err); got != d {
				t.Errorf("DecisionOf(err) = %+v, want %+v", got, d)
			}
			if !errors.Is(err, pdoauth.ErrRejected) {
				t.Errorf("errors.Is(err, ErrRejected) = false for %v", err)
			}
			assertNoSecrets(t, "err.Error()", err.Error())
		})
	}
}

func TestUnusableSuccessAnswers(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		ctype   string
		wantErr error
	}{
		{"200 without access_token", `{"refresh_token":"1:1:BBBB","expires_in":3599}`, "application/json", pdoauth.ErrMissingAccessToken},
		{"200 empty access_token", `{"access_token":"","expires_in":3599}`, "application/json", pdoauth.ErrMissingAccessToken},
		{"200 error body", `{"success":false,"message":"Invalid grant: refresh_token is invalid"}`, "application/json", pdoauth.ErrMissingAccessToken},
		{"200 empty body", ``, "application/json", pdoauth.ErrMalformedResponse},
		{"200 HTML page", `<html>captive portal</html>`, "text/html", pdoauth.ErrMalformedResponse},
		{"200 truncated JSON", `{"access_token":"v1u:AAAA`, "application/json", pdoauth.ErrMalformedResponse},
		{"200 JSON array", `[{"access_token":"x"}]`, "application/json", pdoauth.ErrMalformedResponse},
		{"200 access_token wrong type", `{"access_token":12345}`, "application/json", pdoauth.ErrMalformedResponse},
		{"200 oversized", `{"access_token":"a","pad":"` + strings.Repeat("x", pdoauth.MaxBodyBytes) + `"}`, "application/json", pdoauth.ErrBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, reply(200, tt.body, "Content-Type", tt.ctype))
			tok, err := c.Refresh(context.Background(), refreshTok)
			if tok != nil || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Refresh() = %v, %v; want nil, %v", tok, err, tt.wantErr)
			}
			d := decisionOf(t, err)
			if d.Action != pderrors.Retry || d.Reason != pderrors.ReasonUnexpected || !d.Alert || d.Status != 200 {
				t.Errorf("decision = %+v, want Retry (unexpected), Alert, status 200", d)
			}
			assertNoSecrets(t, "err.Error()", err.Error())
			if strings.Contains(err.Error(), "captive") || strings.Contains(err.Error(), "xxxx") {
				t.Errorf("err.Error() = %q quotes the body", err)
			}
		})
	}
}

func TestOversizedErrorBodyIsStillClassified(t *testing.T) {
	body := `{"success":false,"message":"Invalid grant: ` + "`refresh_token`" + ` is invalid","pad":"` + strings.Repeat("x", 2*pdoauth.MaxBodyBytes) + `"}`
	c := newClient(t, reply(400, body))
	_, err := c.Refresh(context.Background(), refreshTok)
	d := decisionOf(t, err)
	// Truncation breaks the JSON: the status alone decides, and the call still ends quickly.
	if d.Action != pderrors.DeadLetter || d.Status != 400 {
		t.Errorf("decision = %+v, want DeadLetter with status 400", d)
	}
}

func TestUntrustedAPIDomainIsRefused(t *testing.T) {
	for _, domain := range []string{"http://evil.example", "https://user:pw@acme.pipedrive.com", "javascript:alert(1)", "https://acme.pipedrive.com/steal", "ftp://acme.pipedrive.com"} {
		t.Run(domain, func(t *testing.T) {
			c := newClient(t, reply(200, okBody(domain)))
			tok, err := c.Exchange(context.Background(), testCode, "https://app.example/cb")
			if tok != nil || !errors.Is(err, pdoauth.ErrUntrustedAPIDomain) {
				t.Fatalf("Exchange() = %v, %v; want nil, ErrUntrustedAPIDomain", tok, err)
			}
			if d := decisionOf(t, err); d.Action != pderrors.DeadLetter || !d.Alert {
				t.Errorf("decision = %+v, want DeadLetter with Alert", d)
			}
		})
	}
}

// TestValidateAPIDomain: an access token goes to https Pipedrive hosts only (exact suffix on
// the parsed host, port 443 or none); loopback only under the explicit test/local policy
// (issue 11, finding 5).
func TestValidateAPIDomain(t *testing.T) {
	tests := []struct {
		in, want string // want "" means rejected by the production policy
		loopback string // the result with AllowLoopback ("" rejected); "=" means same as want
	}{
		{"https://acme.pipedrive.com", "https://acme.pipedrive.com", "="},
		{"https://acme.pipedrive.com/", "https://acme.pipedrive.com", "="},
		{"https://acme.pipedrive.com:443", "https://acme.pipedrive.com:443", "="},
		{"https://ACME.Pipedrive.com", "https://acme.pipedrive.com", "="},
		{"https://eu.acme.pipedrive.com", "https://eu.acme.pipedrive.com", "="},
		{"https://acme.pipedrive.com.attacker.io:8443", "", ""},
		{"https://acme.pipedrive.com.attacker.io", "", ""},
		{"https://acme.pipedrive.com:8443", "", ""},
		{"https://acme-pipedrive.com", "", ""},
		{"https://pipedrive.com.evil", "", ""},
		{"https://evilpipedrive.com", "", ""},
		{"https://.pipedrive.com", "", ""},
		{"https://pipedrive.com", "", ""},
		{"https://acme.pipedrive.com.", "", ""},
		{"https://a_b.pipedrive.com", "", ""},
		{"https://-acme.pipedrive.com", "", ""},
		{"https://evil.example", "", ""},
		{"https://127.0.0.1:8443", "", "https://127.0.0.1:8443"},
		{"http://127.0.0.1:8080", "", "http://127.0.0.1:8080"},
		{"http://localhost:9000/", "", "http://localhost:9000"},
		{"http://[::1]:9000", "", "http://[::1]:9000"},
		{"http://acme.pipedrive.com", "", ""},
		{"http://127.0.0.2", "", ""},
		{"http://localhost.evil.example", "", ""},
		{"http://127.0.0.1.nip.io", "", ""},
		{"https://", "", ""},
		{"https://acme.pipedrive.com/api/v1", "", ""},
		{"https://acme.pipedrive.com?x=1", "", ""},
		{"https://acme.pipedrive.com#frag", "", ""},
		{"https://u@acme.pipedrive.com", "", ""},
		{"http://u@127.0.0.1:8080", "", ""},
		{"acme.pipedrive.com", "", ""},
		{"//acme.pipedrive.com", "", ""},
		{"file:///etc/passwd", "", ""},
		{"", "", ""},
		{"https://" + strings.Repeat("a", 300) + ".pipedrive.com", "", ""},
		{"https://acme pipedrive.com", "", ""},
	}
	check := func(name string, p pdoauth.APIDomainPolicy, in, want string) {
		t.Helper()
		got, err := p.Validate(in)
		if want == "" {
			if !errors.Is(err, pdoauth.ErrUntrustedAPIDomain) {
				t.Errorf("%s.Validate(%q) = %q, %v; want ErrUntrustedAPIDomain", name, in, got, err)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("%s.Validate(%q) = %q, %v; want %q, nil", name, in, got, err, want)
		}
	}
	for _, tt := range tests {
		check("production", pdoauth.APIDomainPolicy{}, tt.in, tt.want)
		loop := tt.loopback
		if loop == "=" {
			loop = tt.want
		}
		check("loopback", pdoauth.APIDomainPolicy{AllowLoopback: true}, tt.in, loop)
		if got, err := pdoauth.ValidateAPIDomain(tt.in); (err == nil) != (tt.want != "") || got != tt.want {
			t.Errorf("ValidateAPIDomain(%q) = %q, %v; want the production policy's %q", tt.in, got, err, tt.want)
		}
	}
}

// A Client refuses a token answer whose api_domain is loopback unless told otherwise
// (AllowLoopback or PIPEDRIVE_ALLOW_LOOPBACK=true): the deployed functions never are.
func TestClientLoopbackIsExplicit(t *testing.T) {
	t.Setenv(pdoauth.EnvAllowLoopback, "")
	body := `{"access_token":"v1u:a","refresh_token":"1:1:r","expires_in":3599,"api_domain":"http://127.0.0.1:8080"}`
	c := newClient(t, reply(200, body))
	c.AllowLoopback = false
	if _, err := c.Exchange(context.Background(), "code", "https://app.example/cb"); !errors.Is(err, pdoauth.ErrUntrustedAPIDomain) {
		t.Errorf("Exchange with a loopback api_domain, policy off = %v, want ErrUntrustedAPIDomain", err)
	}
	t.Setenv(pdoauth.EnvAllowLoopback, "true")
	if tok, err := c.Exchange(context.Background(), "code", "https://app.example/cb"); err != nil || tok.APIDomain != "http://127.0.0.1:8080" {
		t.Errorf("Exchange with %s=true = %v, %v; want the loopback api_domain", pdoauth.EnvAllowLoopback, tok, err)
	}
}

func TestRevoke(t *testing.T) {
	c := newClient(t, reply(200, ``))
	if err := c.Revoke(context.Background(), refreshTok, "refresh_token"); err != nil {
		t.Errorf("Revoke() = %v, want nil", err)
	}
	c = newClient(t, reply(401, `{"success":false,"message":"Invalid client: client is invalid"}`, "WWW-Authenticate", `Basic realm="Service"`))
	err := c.Revoke(context.Background(), refreshTok, "refresh_token")
	if d := decisionOf(t, err); d.Reason != pderrors.ReasonClientInvalid || d.Status != 401 {
		t.Errorf("Revoke() decision = %+v, want client_invalid, 401", d)
	}
	assertNoSecrets(t, "err.Error()", err.Error())
}

// hang returns a handler that answers nothing until the client goes away. It reads the body
// first: only then does net/http notice a closed connection and cancel r.Context().
func hang(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

func TestTimeoutIsRetry(t *testing.T) {
	c := newClient(t, hang)
	c.HTTP = &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err := c.Exchange(context.Background(), testCode, "https://app.example/cb")
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Exchange() took %v, want about the 100ms timeout", elapsed)
	}
	if d := pderrors.DecisionOf(err); d.Action != pderrors.Retry || d.Reason != pderrors.ReasonTimeout {
		t.Errorf("DecisionOf(Exchange() error %v) = %+v, want Retry (timeout)", err, d)
	}
	assertNoSecrets(t, "err.Error()", err.Error())
}

func TestSlowBodyTimeoutIsRetry(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		io.WriteString(w, `{"access_token":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	c.HTTP = &http.Client{Timeout: 100 * time.Millisecond}
	_, err := c.Refresh(context.Background(), refreshTok)
	if d := pderrors.DecisionOf(err); d.Action != pderrors.Retry || d.Reason != pderrors.ReasonTimeout {
		t.Errorf("DecisionOf(Refresh() error %v) = %+v, want Retry (timeout)", err, d)
	}
}

func TestContextDeadlineIsRetry(t *testing.T) {
	c := newClient(t, hang)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Refresh(ctx, refreshTok)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Refresh() error = %v, want context.DeadlineExceeded in the chain", err)
	}
	if d := pderrors.DecisionOf(err); d.Action != pderrors.Retry || d.Reason != pderrors.ReasonTimeout {
		t.Errorf("DecisionOf = %+v, want Retry (timeout)", d)
	}
}

func TestConnectionRefusedIsNetworkRetry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := &pdoauth.Client{BaseURL: "http://" + addr, Credentials: pdoauth.StaticCredentials(testID, testSecret)}
	_, err = c.Refresh(context.Background(), refreshTok)
	if d := pderrors.DecisionOf(err); d.Action != pderrors.Retry || d.Reason != pderrors.ReasonNetwork {
		t.Errorf("DecisionOf(%v) = %+v, want Retry (network)", err, d)
	}
}

func TestCredentials(t *testing.T) {
	calls := 0
	c := newClient(t, reply(200, okBody("https://acme.pipedrive.com")))
	c.Credentials = func(context.Context) (string, string, error) {
		calls++
		return fmt.Sprintf("id-%d", calls), "secret", nil
	}
	for range 2 {
		if _, err := c.Refresh(context.Background(), refreshTok); err != nil {
			t.Fatalf("Refresh() error = %v", err)
		}
	}
	if calls != 2 {
		t.Errorf("Credentials called %d times for 2 requests, want 2 (rotation is seen per request)", calls)
	}

	boom := errors.New("secrets manager down")
	c.Credentials = func(context.Context) (string, string, error) { return "", "", boom }
	if _, err := c.Refresh(context.Background(), refreshTok); !errors.Is(err, boom) {
		t.Errorf("Refresh() with failing credentials = %v, want %v", err, boom)
	}
	c.Credentials = pdoauth.StaticCredentials("", "secret")
	if _, err := c.Refresh(context.Background(), refreshTok); !errors.Is(err, pdoauth.ErrNoCredentials) {
		t.Errorf("Refresh() with empty client id = %v, want ErrNoCredentials", err)
	}
	c.Credentials = nil
	if err := c.Revoke(context.Background(), "t", ""); !errors.Is(err, pdoauth.ErrNoCredentials) {
		t.Errorf("Revoke() without credentials = %v, want ErrNoCredentials", err)
	}
}

func TestAuthorizeURL(t *testing.T) {
	tests := []struct {
		name, base, state string
		want              url.Values
		wantPrefix        string
	}{
		{"default base", "", "st4te", url.Values{"client_id": {testID}, "redirect_uri": {"https://app.example/cb?x=1"}, "state": {"st4te"}, "response_type": {"code"}}, "https://oauth.pipedrive.com/oauth/authorize?"},
		{"custom base, no state", "http://127.0.0.1:9000/", "", url.Values{"client_id": {testID}, "redirect_uri": {"https://app.example/cb?x=1"}, "response_type": {"code"}}, "http://127.0.0.1:9000/oauth/authorize?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &pdoauth.Client{BaseURL: tt.base, Credentials: pdoauth.StaticCredentials(testID, testSecret)}
			got, err := c.AuthorizeURL(context.Background(), "https://app.example/cb?x=1", tt.state)
			if err != nil {
				t.Fatalf("AuthorizeURL() error = %v", err)
			}
			if !strings.HasPrefix(got, tt.wantPrefix) {
				t.Errorf("AuthorizeURL() = %q, want prefix %q", got, tt.wantPrefix)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if q := u.Query(); q.Encode() != tt.want.Encode() {
				t.Errorf("AuthorizeURL() query = %q, want %q", q.Encode(), tt.want.Encode())
			}
			assertNoSecrets(t, "AuthorizeURL()", got)
		})
	}
}

func TestTokenNeverPrintsSecrets(t *testing.T) {
	tok := &pdoauth.Token{AccessToken: accessTok, RefreshToken: refreshTok, TokenType: "Bearer", Scopes: []string{"base"}, APIDomain: "https://acme.pipedrive.com", ExpiresAt: t0}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("token", "token", tok, "value", *tok)
	for what, s := range map[string]string{
		"%v": fmt.Sprintf("%v", tok), "%+v": fmt.Sprintf("%+v", tok), "%#v": fmt.Sprintf("%#v", tok),
		"String()": tok.String(), "%v of value": fmt.Sprintf("%v", *tok), "%+v of value": fmt.Sprintf("%+v", *tok), "slog": buf.String(),
	} {
		assertNoSecrets(t, what, s)
		if !strings.Contains(s, "acme.pipedrive.com") {
			t.Errorf("%s = %q, want the api_domain shown", what, s)
		}
	}
	var logged map[string]any
	if err := json.Unmarshal(buf.Bytes(), &logged); err != nil {
		t.Fatalf("slog output is not JSON: %v", err)
	}
	for _, key := range []string{"token", "value"} {
		if g, _ := logged[key].(map[string]any); g["has_refresh_token"] != true {
			t.Errorf("logged %s = %v, want has_refresh_token true", key, logged[key])
		}
	}
}
