package callback

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
)

// stateCookieOf returns the state binding the install answer sets, after checking the
// cookie's attributes: __Host- requires Secure and Path=/ and forbids Domain.
func stateCookieOf(t *testing.T, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	for _, c := range resp.Cookies {
		v, ok := strings.CutPrefix(c, stateCookie+"=")
		if !ok {
			continue
		}
		value, attrs, _ := strings.Cut(v, ";")
		for _, want := range []string{"Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=600"} {
			if !strings.Contains(attrs, want) {
				t.Errorf("state cookie attributes %q lack %s", attrs, want)
			}
		}
		if strings.Contains(strings.ToLower(attrs), "domain=") {
			t.Errorf("state cookie attributes %q set a Domain (a __Host- cookie must not)", attrs)
		}
		if value == "" {
			t.Fatalf("state cookie is empty")
		}
		return value
	}
	t.Fatalf("install answer sets no %s cookie (cookies %q)", stateCookie, resp.Cookies)
	return ""
}

// startInstall runs GET /oauth/install and the user's approval at the simulator; it returns
// the code and state Pipedrive sends back and the browser's state cookie.
func (e *env) startInstall() (code, state, binding string) {
	e.t.Helper()
	resp := e.handle(loadEvent(e.t, "install.json"))
	binding = stateCookieOf(e.t, resp)
	secrets.Add("state binding", binding)
	q := e.authorize(resp.Headers["Location"])
	secrets.AddWhole("state", q.Get("state"))
	return q.Get("code"), q.Get("state"), binding
}

// callbackWithCookie is GET /oauth/callback?code&state from a browser holding cookie (none
// when empty), sent the way HTTP API 2.0 passes cookies.
func (e *env) callbackWithCookie(code, state, cookie string) events.APIGatewayV2HTTPResponse {
	e.t.Helper()
	ev := callbackEvent(e.t, url.Values{"code": {code}, "state": {state}})
	if cookie != "" {
		ev.Cookies = []string{"other=1", stateCookie + "=" + cookie}
	}
	return e.handle(ev)
}

// wantCookieCleared checks the answer deletes the state cookie: a state is good for one
// callback.
func wantCookieCleared(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
	t.Helper()
	for _, c := range resp.Cookies {
		if strings.HasPrefix(c, stateCookie+"=;") && strings.Contains(c, "Max-Age=0") && strings.Contains(c, "Secure") {
			return
		}
	}
	t.Errorf("callback answer does not clear %s (cookies %q)", stateCookie, resp.Cookies)
}

// Finding 2 (login CSRF): with REQUIRE_STATE=true, a state from /oauth/install is accepted only
// in the browser that started the install. An attacker who starts an install, stops at
// Pipedrive's redirect and sends the link (their code and state) to a victim gets a refusal
// and no token call; Marketplace-style callbacks without a state keep working when
// REQUIRE_STATE is off.
func TestStateBoundToBrowser(t *testing.T) {
	tests := []struct {
		name         string
		requireState bool
		cookie       func(own, other string) string
		ok           bool
	}{
		{"own cookie, REQUIRE_STATE on", true, func(own, _ string) string { return own }, true},
		{"no cookie (link sent to a victim), REQUIRE_STATE on", true, func(string, string) string { return "" }, false},
		{"another browser's cookie, REQUIRE_STATE on", true, func(_, other string) string { return other }, false},
		{"own cookie, REQUIRE_STATE off", false, func(own, _ string) string { return own }, true},
		{"no cookie, REQUIRE_STATE off (worth no state, which this mode accepts)", false, func(string, string) string { return "" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(h *handler) { h.Flow.RequireState = tt.requireState })
			_, _, other := e.startInstall() // another browser's install, abandoned
			code, state, own := e.startInstall()
			resp := e.callbackWithCookie(code, state, tt.cookie(own, other))
			wantCookieCleared(t, resp)
			if tt.ok {
				wantPage(t, resp, http.StatusOK, "The app is installed")
				return
			}
			wantPage(t, resp, http.StatusBadRequest, "This install link is invalid or expired")
			if n := e.tokenCalls(); n != 0 {
				t.Errorf("token calls for an unbound state = %d, want 0", n)
			}
			if _, err := e.installation(); err == nil {
				t.Errorf("an installation was stored from another browser's state")
			}
		})
	}
}

// The cookie header form (literal events, other gateways) binds as well; a duplicated cookie
// (one planted by a sibling) binds nothing.
func TestStateCookieFromHeader(t *testing.T) {
	e := newEnv(t, func(h *handler) { h.Flow.RequireState = true })
	code, state, own := e.startInstall()
	ev := callbackEvent(t, url.Values{"code": {code}, "state": {state}})
	ev.Headers["cookie"] = stateCookie + "=" + own + "; " + stateCookie + "=" + own
	wantPage(t, e.handle(ev), http.StatusBadRequest, "This install link is invalid or expired")
	ev.Headers["cookie"] = "a=b; " + stateCookie + "=" + own
	wantPage(t, e.handle(ev), http.StatusOK, "The app is installed")
}

// Finding 2: one state plus random codes cannot make the callback call the token endpoint
// without bound: AttemptsPerState per state, AttemptsPerIP per client IP, per window; then
// 429 without a token call.
func TestTokenEndpointCallsAreCapped(t *testing.T) {
	t.Run("per state", func(t *testing.T) {
		e := newEnv(t, func(h *handler) { h.Flow.AttemptsPerState = 3 })
		e.h.Flow.Attempts = e.store
		_, state, own := e.startInstall()
		for i := range 6 {
			resp := e.callbackWithCookie("random-code-"+strings.Repeat("x", i), state, own)
			if want := http.StatusBadRequest; i < 3 && resp.StatusCode != want {
				t.Errorf("attempt %d = %d, want %d (unknown code)", i+1, resp.StatusCode, want)
			}
			if i >= 3 {
				wantPage(t, resp, http.StatusTooManyRequests, "Too many attempts")
			}
		}
		if n := e.tokenCalls(); n != 3 {
			t.Errorf("token calls = %d, want 3 (the per-state cap)", n)
		}
	})
	t.Run("per IP, without a state", func(t *testing.T) {
		e := newEnv(t, func(h *handler) { h.Flow.AttemptsPerIP = 4 })
		e.h.Flow.Attempts = e.store
		for i := range 7 {
			resp := e.handle(callbackEvent(t, url.Values{"code": {"random-code-" + strings.Repeat("y", i)}}))
			if i >= 4 && resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("attempt %d = %d, want 429", i+1, resp.StatusCode)
			}
		}
		if n := e.tokenCalls(); n != 4 {
			t.Errorf("token calls = %d, want 4 (the per-IP cap)", n)
		}
		// Another client is not affected; the next window starts afresh.
		ev := callbackEvent(t, url.Values{"code": {e.issueCode()}})
		ev.RequestContext.HTTP.SourceIP = "198.51.100.23"
		wantPage(t, e.handle(ev), http.StatusOK, "The app is installed")
		e.clock.Advance(install.DefaultAttemptWindow)
		wantPage(t, e.callback(e.issueCode(), ""), http.StatusOK, "The app is installed")
	})
}
