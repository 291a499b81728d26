package pdapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

const token = "v1u:secret-access-token"

// server starts an httptest server answering every request with status, headers and body,
// and records the last request.
func server(t *testing.T, status int, body string, header ...string) (url string, last *atomic.Pointer[http.Request]) {
	t.Helper()
	last = &atomic.Pointer[http.Request]{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last.Store(r)
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, last
}

func TestMeParsesUser(t *testing.T) {
	tests := []struct {
		name string
		body string
		want pdapi.Me
	}{
		{"documented shape", `{"success":true,"data":{"id":5206648,"name":"Ada","email":"ada@acme.example","company_id":3408256,"company_name":"Acme Inc","company_domain":"acme","is_admin":1,"is_you":true}}`,
			pdapi.Me{ID: 5206648, CompanyID: 3408256, Name: "Ada", Email: "ada@acme.example", CompanyName: "Acme Inc", CompanyDomain: "acme"}},
		{"is_admin absent", `{"success":true,"data":{"id":1,"company_id":2,"name":"B"}}`, pdapi.Me{ID: 1, CompanyID: 2, Name: "B"}},
		{"is_admin boolean", `{"success":true,"data":{"id":1,"company_id":2,"is_admin":true}}`, pdapi.Me{ID: 1, CompanyID: 2}},
		{"ids as strings", `{"success":true,"data":{"id":"5206648","company_id":"3408256"}}`, pdapi.Me{ID: 5206648, CompanyID: 3408256}},
		{"ids as floats", `{"success":true,"data":{"id":5206648.0,"company_id":3408256}}`, pdapi.Me{ID: 5206648, CompanyID: 3408256}},
		{"large ids", `{"success":true,"data":{"id":9007199254740993,"company_id":9007199254740995}}`, pdapi.Me{ID: 9007199254740993, CompanyID: 9007199254740995}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, last := server(t, 200, tt.body)
			got, err := (&pdapi.Client{AllowLoopback: true}).Me(context.Background(), url, token)
			if err != nil {
				t.Fatalf("Me() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("Me() = %+v, want %+v", got, tt.want)
			}
			r := last.Load()
			if r.Method != http.MethodGet || r.URL.Path != "/api/v1/users/me" || r.Header.Get("Authorization") != "Bearer "+token {
				t.Errorf("request = %s %s Authorization=%q, want GET /api/v1/users/me with the bearer token", r.Method, r.URL.Path, r.Header.Get("Authorization"))
			}
		})
	}
}

func TestMeErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		header     []string
		wantAction pderrors.Action
		wantReason pderrors.Reason
		wantErr    error
	}{
		{"401 invalid token", 401, `{"success":false,"error":"Invalid token: ` + "`access_token`" + ` is invalid","error_info":"Please check developers.pipedrive.com","data":null,"additional_data":null}`, nil, pderrors.RefreshAndRetry, pderrors.ReasonAccessTokenInvalid, pdapi.ErrStatus},
		{"403 scope mismatch", 403, `{"success":false,"error":"Scope and URL mismatch","errorCode":403}`, nil, pderrors.DeadLetter, pderrors.ReasonScopeMismatch, pdapi.ErrStatus},
		{"403 Cloudflare page", 403, `<!DOCTYPE html><html><title>Attention Required!</title></html>`, []string{"Content-Type", "text/html"}, pderrors.Retry, pderrors.ReasonBlocked, pdapi.ErrStatus},
		{"400 malformed auth header", 400, `{"success":false,"error":"Invalid request: malformed authorization header"}`, nil, pderrors.DeadLetter, pderrors.ReasonMalformedAuthHeader, pdapi.ErrStatus},
		{"429", 429, `{"success":false,"error":"Request over limit"}`, []string{"X-Ratelimit-Reset", "2"}, pderrors.Retry, pderrors.ReasonRateLimited, pdapi.ErrStatus},
		{"500", 500, `{"success":false,"error":"Internal Server Error"}`, nil, pderrors.Retry, pderrors.ReasonServerError, pdapi.ErrStatus},
		{"301 not followed", 301, ``, []string{"Location", "https://elsewhere.example/"}, pderrors.DeadLetter, pderrors.ReasonUnexpected, pdapi.ErrStatus},
		{"200 without data", 0, `{"success":true}`, nil, pderrors.Retry, pderrors.ReasonUnexpected, pdapi.ErrMalformedResponse},
		{"200 data null", 0, `{"success":true,"data":null}`, nil, pderrors.Retry, pderrors.ReasonUnexpected, pdapi.ErrMalformedResponse},
		{"200 without company_id", 0, `{"success":true,"data":{"id":1}}`, nil, pderrors.Retry, pderrors.ReasonUnexpected, pdapi.ErrMalformedResponse},
		{"200 id not a number", 0, `{"success":true,"data":{"id":"abc","company_id":2}}`, nil, pderrors.Retry, pderrors.ReasonUnexpected, pdapi.ErrMalformedResponse},
		{"200 HTML", 0, `<html>secret-access-token</html>`, []string{"Content-Type", "text/html"}, pderrors.Retry, pderrors.ReasonUnexpected, pdapi.ErrMalformedResponse},
		{"200 truncated", 0, `{"success":true,"data":{"id":1,`, nil, pderrors.Retry, pderrors.ReasonUnexpected, pdapi.ErrMalformedResponse},
		{"200 oversized", 0, `{"success":true,"data":{"id":1,"company_id":2,"pad":"` + strings.Repeat("x", pdapi.MaxBodyBytes) + `"}}`, nil, pderrors.Retry, pderrors.ReasonUnexpected, pdapi.ErrBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = 200
			}
			url, _ := server(t, status, tt.body, tt.header...)
			_, err := (&pdapi.Client{AllowLoopback: true}).Me(context.Background(), url, token)
			var pe *pderrors.Error
			if !errors.As(err, &pe) {
				t.Fatalf("Me() error = %v (%T), want *pderrors.Error", err, err)
			}
			if d := pe.Decision; d.Action != tt.wantAction || d.Reason != tt.wantReason || d.Status != status {
				t.Errorf("Me() decision = %v (%s) status %d, want %v (%s) status %d", d.Action, d.Reason, d.Status, tt.wantAction, tt.wantReason, status)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Me() error = %v, want errors.Is %v", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "secret-access-token") {
				t.Errorf("Me() error %q contains the token", err)
			}
		})
	}
}

func TestMeRefusesUntrustedDomain(t *testing.T) {
	url, last := server(t, 200, `{"success":true,"data":{"id":1,"company_id":2}}`)
	for _, domain := range []string{"", "http://evil.example", strings.Replace(url, "127.0.0.1", "127.0.0.1.nip.io", 1), url + "/api", "https://u:p@acme.pipedrive.com"} {
		_, err := (&pdapi.Client{AllowLoopback: true}).Me(context.Background(), domain, token)
		if !errors.Is(err, pdoauth.ErrUntrustedAPIDomain) {
			t.Errorf("Me(%q) error = %v, want ErrUntrustedAPIDomain", domain, err)
		}
	}
	if last.Load() != nil {
		t.Errorf("a request was sent for an untrusted api_domain")
	}
	if _, err := (&pdapi.Client{AllowLoopback: true}).Me(context.Background(), url, ""); err == nil {
		t.Errorf("Me() with an empty token = nil error, want an error")
	}
}

func TestMeTimeoutIsRetry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(srv.Close)
	c := &pdapi.Client{AllowLoopback: true, HTTP: &http.Client{Timeout: 100 * time.Millisecond}}
	_, err := c.Me(context.Background(), srv.URL, token)
	if d := pderrors.DecisionOf(err); d.Action != pderrors.Retry || d.Reason != pderrors.ReasonTimeout {
		t.Errorf("DecisionOf(Me() error %v) = %+v, want Retry (timeout)", err, d)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("Me() error %q contains the token", err)
	}
}

// TestMeAgainstSimulator runs the install path's identity call against the Pipedrive simulator:
// exchange a code, follow api_domain, read the user; then the 401 and 403 answers.
func TestMeAgainstSimulator(t *testing.T) {
	sim := pdsimtest.New(t, pdsim.Config{})
	oauth := &pdoauth.Client{AllowLoopback: true, BaseURL: sim.URL, Credentials: pdoauth.StaticCredentials(pdsim.DefaultClientID, pdsim.DefaultClientSecret)}
	tok, err := oauth.Exchange(context.Background(), sim.IssueCode(0, pdsim.DefaultRedirectURI), pdsim.DefaultRedirectURI)
	if err != nil {
		t.Fatalf("Exchange() error = %v", err)
	}
	api := &pdapi.Client{AllowLoopback: true}
	me, err := api.Me(context.Background(), tok.APIDomain, tok.AccessToken)
	if err != nil {
		t.Fatalf("Me() error = %v", err)
	}
	want := pdapi.Me{ID: pdsim.DefaultUserID, CompanyID: pdsim.DefaultCompanyID, Name: pdsim.DefaultUserName, Email: pdsim.DefaultUserEmail, CompanyName: pdsim.DefaultCompanyName, CompanyDomain: pdsim.DefaultCompanyDomain}
	if me != want {
		t.Errorf("Me() = %+v, want %+v", me, want)
	}

	t.Run("401 after the access token expired", func(t *testing.T) {
		if n := sim.ExpireAccessTokens(pdsim.DefaultUserID); n == 0 {
			t.Fatalf("ExpireAccessTokens() = 0, want at least 1")
		}
		_, err := api.Me(context.Background(), tok.APIDomain, tok.AccessToken)
		if d := pderrors.DecisionOf(err); d.Action != pderrors.RefreshAndRetry || d.Reason != pderrors.ReasonAccessTokenInvalid || d.Status != 401 {
			t.Errorf("DecisionOf(Me() error) = %+v, want RefreshAndRetry (access_token_invalid) 401", d)
		}
	})

	t.Run("403 without the base scope", func(t *testing.T) {
		if err := sim.AddUser(pdsim.User{ID: 77, CompanyID: 88, CompanyDomain: "narrow", Scopes: []string{"deals:read"}}); err != nil {
			t.Fatal(err)
		}
		narrow, err := sim.IssueToken(77)
		if err != nil {
			t.Fatal(err)
		}
		_, err = api.Me(context.Background(), narrow.APIDomain, narrow.AccessToken)
		if d := pderrors.DecisionOf(err); d.Action != pderrors.DeadLetter || d.Reason != pderrors.ReasonScopeMismatch || d.Status != 403 {
			t.Errorf("DecisionOf(Me() error) = %+v, want DeadLetter (scope_mismatch) 403", d)
		}
	})

	if got := sim.Counters().APIByStatus; got[200] != 1 || got[401] != 1 || got[403] != 1 {
		t.Errorf("simulator APIByStatus = %v, want one each of 200, 401, 403", got)
	}
}
