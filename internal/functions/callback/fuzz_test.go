package callback

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oauthstate"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/uninstall"
)

// fuzzCreds are static credentials.
type fuzzCreds struct{ c clientcreds.Credentials }

func (f fuzzCreds) Get(context.Context) (clientcreds.Credentials, error) { return f.c, nil }
func (fuzzCreds) Invalidate()                                            {}

// downClaims is a code-claim store that is down: every install ends Failed without a token call.
type downClaims struct{}

var errDown = errors.New("store down")

func (downClaims) ClaimCode(context.Context, string, time.Duration) (tokenstore.WorkClaim, error) {
	return tokenstore.WorkClaim{}, errDown
}
func (downClaims) CompleteCode(context.Context, string, string, installation.ID, time.Duration) error {
	return errDown
}
func (downClaims) RetireCode(context.Context, string, string, time.Duration) error { return errDown }
func (downClaims) ReleaseCode(context.Context, string, string) error               { return errDown }

// FuzzCallbackRequest: the API Gateway request handling (method, path, query, state, cookies,
// headers, body) never panics or returns an error, always answers with the security headers,
// and never echoes the request's code or state into the page.
func FuzzCallbackRequest(f *testing.F) {
	key := strings.Repeat("k", 48)
	signer := &oauthstate.Signer{Key: []byte(key)}
	state, binding, _ := signer.IssueBound()
	f.Add("GET", "/oauth/callback", "code=abc&state="+state, stateCookie+"="+binding, "", false)
	f.Add("GET", "/oauth/callback", "code=abc&state="+state+"&state=x", "a=b; "+stateCookie+"=x", "", false)
	f.Add("GET", "/oauth/install", "", "", "", false)
	f.Add("DELETE", "/oauth/callback", "", "", `{"company_id":1,"user_id":2}`, true)
	f.Add("GET", "/prod/oauth/callback/", "error=user_denied&code=%zz", "", "", false)
	h := &handler{
		Flow: &install.Flow{
			Creds: fuzzCreds{clientcreds.Credentials{ClientID: "id", ClientSecret: "secret", StateKey: []byte(key)}},
			OAuth: &pdoauth.Client{Credentials: pdoauth.StaticCredentials("id", "secret")},
			Installer: &install.Installer{OAuth: &pdoauth.Client{Credentials: pdoauth.StaticCredentials("id", "secret")},
				Users: &pdapi.Client{}, Claims: downClaims{}, Store: nil, RedirectURI: "https://app.example/oauth/callback"},
			RequireState: true,
		},
		Uninstall: &uninstall.Uninstaller{Creds: fuzzCreds{clientcreds.Credentials{ClientID: "id", ClientSecret: "secret", StateKey: []byte(key)}}, Store: failingUninstaller{err: errDown}},
	}
	f.Fuzz(func(t *testing.T, method, path, rawQuery, cookie, body string, b64 bool) {
		ev := events.APIGatewayV2HTTPRequest{
			RawPath: path, RawQueryString: rawQuery, Body: body, IsBase64Encoded: b64,
			Headers: map[string]string{"authorization": "Basic aWQ6c2VjcmV0", "cookie": cookie},
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, SourceIP: "203.0.113.7"},
			},
		}
		resp, err := h.Handle(context.Background(), ev)
		if err != nil || resp.StatusCode < 200 || resp.StatusCode > 599 {
			t.Fatalf("Handle = %d, %v", resp.StatusCode, err)
		}
		if resp.Headers["Cache-Control"] != "no-store" || resp.Headers["X-Content-Type-Options"] != "nosniff" {
			t.Fatalf("answer without the security headers: %v", resp.Headers)
		}
		q, _ := url.ParseQuery(rawQuery)
		for _, k := range []string{"code", "state"} {
			if v := q.Get(k); len(v) >= 8 && strings.Contains(resp.Body, v) {
				t.Fatalf("answer echoes the request's %s", k)
			}
		}
	})
}
