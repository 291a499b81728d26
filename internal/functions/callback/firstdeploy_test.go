package callback

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// withoutRedirectURI is a first deploy's callback: no RedirectURI parameter.
func withoutRedirectURI(h *handler) { h.Flow.Installer.RedirectURI = "" }

// TestRedirectURIFromTheRequestDomain: without REDIRECT_URI the callback URL is the request's
// API Gateway domain (and named stage) plus /oauth/callback, the same in the authorize
// redirect and in the code exchange, so a whole install works; a configured REDIRECT_URI
// wins over the domain.
func TestRedirectURIFromTheRequestDomain(t *testing.T) {
	e := newEnv(t, withoutRedirectURI)
	ev := loadEvent(t, "install.json") // domainName abc123.execute-api.eu-central-1.amazonaws.com
	resp := e.handle(ev)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /oauth/install = %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Headers["Location"])
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Query().Get("redirect_uri"); got != redirectURI {
		t.Errorf("authorize redirect_uri = %q, want %q (from the request's domain)", got, redirectURI)
	}
	back := e.authorize(resp.Headers["Location"]) // the simulator checks redirect_uri against Developer Hub's
	secrets.AddWhole("state", back.Get("state"))
	cb := callbackEvent(t, back)
	cb.Cookies = []string{cookieFrom(t, resp)}
	wantPage(t, e.handle(cb), http.StatusOK, "The app is installed")
	if _, err := e.installation(); err != nil {
		t.Errorf("installation after a derived-redirect install: %v", err)
	}

	staged := loadEvent(t, "install.json")
	staged.RawPath, staged.RequestContext.Stage = "/prod/oauth/install", "prod"
	loc, _ = url.Parse(e.handle(staged).Headers["Location"])
	if got, want := loc.Query().Get("redirect_uri"), "https://abc123.execute-api.eu-central-1.amazonaws.com/prod/oauth/callback"; got != want {
		t.Errorf("redirect_uri on stage prod = %q, want %q", got, want)
	}
	odd := loadEvent(t, "install.json")
	odd.RequestContext.DomainName = "evil.example/x?"
	wantPage(t, e.handle(odd), http.StatusInternalServerError, "Something went wrong")

	configured := newEnv(t) // REDIRECT_URI set: it wins over any domain
	other := loadEvent(t, "install.json")
	other.RequestContext.DomainName = "custom.example.com"
	loc, _ = url.Parse(configured.handle(other).Headers["Location"])
	if got := loc.Query().Get("redirect_uri"); got != redirectURI {
		t.Errorf("redirect_uri with REDIRECT_URI set = %q, want %q", got, redirectURI)
	}
}

// cookieFrom turns the install answer's Set-Cookie into the Cookie the browser sends back.
func cookieFrom(t *testing.T, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	if len(resp.Cookies) != 1 {
		t.Fatalf("install answer cookies = %d, want 1", len(resp.Cookies))
	}
	c, _, _ := strings.Cut(resp.Cookies[0], ";")
	return c
}

// TestNotConfigured: with the secret as a first deploy leaves it (client id and secret still
// REPLACE_ME), every route answers "not configured" (a page, or JSON for the uninstall API),
// alerts nobody and calls nothing; once the operator sets the secret, the next install works
// without a restart.
func TestNotConfigured(t *testing.T) {
	e := newEnv(t, withoutRedirectURI)
	testenv.AsFirstDeployed(t, e.res)
	var own testenv.Buffer
	e.h.Log = slog.New(slog.NewJSONHandler(io.MultiWriter(&own, logSink), &slog.HandlerOptions{Level: slog.LevelDebug}))

	wantPage(t, e.handle(loadEvent(t, "install.json")), http.StatusServiceUnavailable, "not configured yet")
	wantPage(t, e.callback(e.issueCode(), ""), http.StatusServiceUnavailable, "not configured yet")
	un := e.handle(loadEvent(t, "uninstall.json"))
	if un.StatusCode != http.StatusServiceUnavailable || !strings.Contains(un.Body, "not configured") {
		t.Errorf("uninstall = %d %s, want 503 not configured", un.StatusCode, un.Body)
	}
	if got := e.alertReasons(); len(got) != 0 {
		t.Errorf("alerts = %v, want none: not configured is not a failure", got)
	}
	if n := e.tokenCalls(); n != 0 {
		t.Errorf("token calls = %d, want 0", n)
	}
	if got := strings.Count(own.String(), `"action":"not_configured"`); got != 3 {
		t.Errorf("log has %d not_configured events, want 3 (one per request):\n%s", got, own.String())
	}
	if strings.Contains(own.String(), `"level":"ERROR"`) {
		t.Errorf("log has an ERROR line, want warnings only:\n%s", own.String())
	}

	e.putSecret(testenv.ClientID, testenv.ClientSecret, testenv.StateKey)
	if resp := e.handle(loadEvent(t, "install.json")); resp.StatusCode != http.StatusFound {
		t.Errorf("install after setup = %d, want 302 (no restart needed)", resp.StatusCode)
	}
}

// TestBootstrapNotConfigured runs the real bootstrap under the emulator with the template's
// environment (no RedirectURI parameter) and the secret of a first deploy: it starts (no
// crash, so no Lambda error and no alarm), logs "not configured" once at its cold start, and
// answers the install page "not configured" without a Lambda error.
func TestBootstrapNotConfigured(t *testing.T) {
	res := testenv.Provision(t)
	testenv.AsFirstDeployed(t, res)
	var logs testenv.Buffer
	f, _ := testenv.StartFunction(t, "./functions/callback", lambdarun.Options{
		Name:    "CallbackFunction",
		Env:     testenv.FunctionEnv(t, res, "CallbackFunction"),
		Timeout: 10 * time.Second,
		Output:  io.MultiWriter(&logs, logSink, testenv.TestLogWriter(t)),
	})
	for range 2 {
		var resp events.APIGatewayV2HTTPResponse
		if err := f.InvokeJSON(t.Context(), loadEvent(t, "install.json"), &resp); err != nil {
			t.Fatalf("invoke = %v, want an answer (no function error)", err)
		}
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(resp.Body, "not configured yet") {
			t.Errorf("install = %d %.200q, want 503 and the not-configured page", resp.StatusCode, resp.Body)
		}
	}
	if got := strings.Count(logs.String(), "callback: not configured: "); got != 1 {
		t.Errorf("cold-start not-configured lines = %d, want 1:\n%s", got, logs.String())
	}
}
