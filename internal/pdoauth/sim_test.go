package pdoauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

const simRedirect = "https://app.example/oauth/callback"

// simClient starts a simulator with cfg (its clock is a pdsim.Clock at t0) and returns a Client
// for it with the right credentials.
func simClient(t *testing.T, cfg pdsim.Config) (*pdsimtest.TestServer, *pdsim.Clock, *pdoauth.Client) {
	t.Helper()
	clock := pdsim.NewClock(t0)
	cfg.Now = clock.Now
	cfg.RedirectURI = simRedirect
	sim := pdsimtest.New(t, cfg)
	c := &pdoauth.Client{
		AllowLoopback: true, // the simulator's api_domain is its loopback URL
		BaseURL:       sim.URL,
		Credentials:   pdoauth.StaticCredentials(pdsim.DefaultClientID, pdsim.DefaultClientSecret),
		HTTP:          &http.Client{Timeout: 2 * time.Second},
		Now:           clock.Now,
	}
	return sim, clock, c
}

// wantReason asserts err carries a Decision with the action and reason.
func wantReason(t *testing.T, what string, err error, action pderrors.Action, reason pderrors.Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s error = nil, want %v (%s)", what, action, reason)
	}
	if d := pderrors.DecisionOf(err); d.Action != action || d.Reason != reason {
		t.Errorf("%s decision = %v (%s) [%v], want %v (%s)", what, d.Action, d.Reason, err, action, reason)
	}
}

func TestSimulatorCodeExchange(t *testing.T) {
	sim, _, c := simClient(t, pdsim.Config{})
	tok, err := c.Exchange(context.Background(), sim.IssueCode(0, simRedirect), simRedirect)
	if err != nil {
		t.Fatalf("Exchange() error = %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" {
		t.Errorf("Exchange() = %v, want access and refresh tokens of type Bearer", tok)
	}
	if tok.APIDomain != sim.URL {
		t.Errorf("Exchange().APIDomain = %q, want the simulator %q", tok.APIDomain, sim.URL)
	}
	if tok.ExpiresIn != pdsim.DefaultAccessTokenTTL || !tok.ExpiresAt.Equal(t0.Add(pdsim.DefaultAccessTokenTTL)) {
		t.Errorf("Exchange() ExpiresIn, ExpiresAt = %v, %v; want %v, %v", tok.ExpiresIn, tok.ExpiresAt, pdsim.DefaultAccessTokenTTL, t0.Add(pdsim.DefaultAccessTokenTTL))
	}
	if !slices.Equal(tok.Scopes, pdsim.DefaultScopes) {
		t.Errorf("Exchange().Scopes = %q, want %q", tok.Scopes, pdsim.DefaultScopes)
	}
	if n := sim.Counters().TokenByGrant["authorization_code"]; n != 1 {
		t.Errorf("simulator saw %d authorization_code calls, want 1", n)
	}
}

func TestSimulatorAuthorizeURLIsAccepted(t *testing.T) {
	sim, _, c := simClient(t, pdsim.Config{})
	u, err := c.AuthorizeURL(context.Background(), simRedirect, "state-1")
	if err != nil {
		t.Fatalf("AuthorizeURL() error = %v", err)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatalf("GET AuthorizeURL() error = %v", err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode/100 != 3 || loc == nil || loc.Query().Get("state") != "state-1" || loc.Query().Get("code") == "" {
		t.Fatalf("GET AuthorizeURL() = %d Location %q, want a redirect to the callback with code and state", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := c.Exchange(context.Background(), loc.Query().Get("code"), simRedirect); err != nil {
		t.Errorf("Exchange(code from authorize) error = %v", err)
	}
	if n := sim.Counters().Authorize["approved"]; n != 1 {
		t.Errorf("simulator approved %d authorizations, want 1", n)
	}
}

func TestSimulatorCodeErrors(t *testing.T) {
	t.Run("reused code", func(t *testing.T) {
		sim, _, c := simClient(t, pdsim.Config{})
		code := sim.IssueCode(0, simRedirect)
		if _, err := c.Exchange(context.Background(), code, simRedirect); err != nil {
			t.Fatalf("first Exchange() error = %v", err)
		}
		_, err := c.Exchange(context.Background(), code, simRedirect)
		wantReason(t, "second Exchange()", err, pderrors.Reauthorize, pderrors.ReasonAuthCodeInvalid)
	})
	t.Run("expired code", func(t *testing.T) {
		sim, clock, c := simClient(t, pdsim.Config{})
		code := sim.IssueCode(0, simRedirect)
		clock.Advance(pdsim.DefaultCodeTTL + time.Second)
		_, err := c.Exchange(context.Background(), code, simRedirect)
		wantReason(t, "Exchange(expired code)", err, pderrors.Reauthorize, pderrors.ReasonAuthCodeExpired)
	})
	t.Run("unknown code", func(t *testing.T) {
		_, _, c := simClient(t, pdsim.Config{})
		_, err := c.Exchange(context.Background(), "no-such-code", simRedirect)
		wantReason(t, "Exchange(unknown code)", err, pderrors.Reauthorize, pderrors.ReasonAuthCodeInvalid)
	})
	t.Run("redirect_uri mismatch", func(t *testing.T) {
		sim, _, c := simClient(t, pdsim.Config{})
		_, err := c.Exchange(context.Background(), sim.IssueCode(0, simRedirect), "https://other.example/cb")
		wantReason(t, "Exchange(other redirect)", err, pderrors.DeadLetter, pderrors.ReasonRedirectURIMismatch)
	})
	t.Run("wrong client secret", func(t *testing.T) {
		sim, _, c := simClient(t, pdsim.Config{})
		c.Credentials = pdoauth.StaticCredentials(pdsim.DefaultClientID, "wrong-secret")
		_, err := c.Exchange(context.Background(), sim.IssueCode(0, simRedirect), simRedirect)
		wantReason(t, "Exchange(wrong secret)", err, pderrors.DeadLetter, pderrors.ReasonClientInvalid)
		if d := pderrors.DecisionOf(err); d.Status != http.StatusUnauthorized || !d.Alert {
			t.Errorf("decision = %+v, want status 401 with Alert", d)
		}
	})
}

func TestSimulatorRefresh(t *testing.T) {
	for _, rotate := range []bool{false, true} {
		name := map[bool]string{false: "rotation off", true: "rotation on"}[rotate]
		t.Run(name, func(t *testing.T) {
			sim, clock, c := simClient(t, pdsim.Config{RotateRefreshTokens: rotate})
			first, err := c.Exchange(context.Background(), sim.IssueCode(0, simRedirect), simRedirect)
			if err != nil {
				t.Fatalf("Exchange() error = %v", err)
			}
			clock.Advance(50 * time.Minute)
			second, err := c.Refresh(context.Background(), first.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh() error = %v", err)
			}
			if second.AccessToken == first.AccessToken {
				t.Errorf("Refresh() returned the old access token")
			}
			if rotated := second.RefreshToken != first.RefreshToken; rotated != rotate {
				t.Errorf("Refresh() rotated the refresh token = %v, want %v", rotated, rotate)
			}
			if want := t0.Add(50*time.Minute + pdsim.DefaultAccessTokenTTL); !second.ExpiresAt.Equal(want) {
				t.Errorf("Refresh().ExpiresAt = %v, want %v", second.ExpiresAt, want)
			}
			if second.APIDomain != sim.URL {
				t.Errorf("Refresh().APIDomain = %q, want %q", second.APIDomain, sim.URL)
			}
			// The stored (returned) refresh token keeps working either way.
			if _, err := c.Refresh(context.Background(), second.RefreshToken); err != nil {
				t.Errorf("Refresh(returned refresh token) error = %v", err)
			}
			// Reusing the first one fails only when it was rotated away.
			_, err = c.Refresh(context.Background(), first.RefreshToken)
			if rotate {
				wantReason(t, "Refresh(spent refresh token)", err, pderrors.Reauthorize, pderrors.ReasonRefreshTokenInvalid)
			} else if err != nil {
				t.Errorf("Refresh(same refresh token) error = %v, want nil without rotation", err)
			}
		})
	}
}

func TestSimulatorAPIDomainChange(t *testing.T) {
	sim, _, c := simClient(t, pdsim.Config{})
	first, err := c.Exchange(context.Background(), sim.IssueCode(0, simRedirect), simRedirect)
	if err != nil {
		t.Fatalf("Exchange() error = %v", err)
	}
	moved := "http://localhost:" + mustPort(t, sim.URL)
	sim.SetAPIDomain(pdsim.DefaultCompanyID, moved)
	tok, err := c.Refresh(context.Background(), first.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh() error = %v", err)
	}
	if tok.APIDomain != moved {
		t.Errorf("Refresh().APIDomain = %q, want the new %q", tok.APIDomain, moved)
	}
	sim.SetAPIDomain(pdsim.DefaultCompanyID, "http://attacker.example")
	_, err = c.Refresh(context.Background(), tok.RefreshToken)
	if !errors.Is(err, pdoauth.ErrUntrustedAPIDomain) {
		t.Errorf("Refresh() with api_domain http://attacker.example error = %v, want ErrUntrustedAPIDomain", err)
	}
}

func mustPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

func TestSimulatorExchangeAPIToken(t *testing.T) {
	sim, _, c := simClient(t, pdsim.Config{})
	apiToken := sim.AddAPIToken(pdsim.DefaultUserID)
	tok, err := c.ExchangeAPIToken(context.Background(), apiToken)
	if err != nil {
		t.Fatalf("ExchangeAPIToken() error = %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.APIDomain != sim.URL {
		t.Errorf("ExchangeAPIToken() = %v, want tokens and api_domain %q", tok, sim.URL)
	}
	_, err = c.ExchangeAPIToken(context.Background(), apiToken)
	wantReason(t, "second ExchangeAPIToken()", err, pderrors.Reauthorize, pderrors.ReasonAPITokenInvalid)
}

func TestSimulatorRevoke(t *testing.T) {
	sim, _, c := simClient(t, pdsim.Config{})
	tok, err := c.Exchange(context.Background(), sim.IssueCode(0, simRedirect), simRedirect)
	if err != nil {
		t.Fatalf("Exchange() error = %v", err)
	}
	if err := c.Revoke(context.Background(), tok.RefreshToken, "refresh_token"); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	if n := sim.Counters().Revokes; n != 1 {
		t.Errorf("simulator Revokes = %d, want 1", n)
	}
	_, err = c.Refresh(context.Background(), tok.RefreshToken)
	wantReason(t, "Refresh(revoked)", err, pderrors.Reauthorize, pderrors.ReasonRefreshTokenInvalid)

	c.Credentials = pdoauth.StaticCredentials(pdsim.DefaultClientID, "wrong-secret")
	err = c.Revoke(context.Background(), tok.AccessToken, "access_token")
	wantReason(t, "Revoke(wrong secret)", err, pderrors.DeadLetter, pderrors.ReasonClientInvalid)
}

func TestSimulatorFaults(t *testing.T) {
	tests := []struct {
		name       string
		fault      pdsim.Fault
		wantAction pderrors.Action
		wantReason pderrors.Reason
	}{
		{"500", pdsim.Fault{Path: "/oauth/token", Status: 500}, pderrors.Retry, pderrors.ReasonServerError},
		{"503", pdsim.Fault{Path: "/oauth/token", Status: 503}, pderrors.Retry, pderrors.ReasonUnavailable},
		{"429", pdsim.Fault{Path: "/oauth/token", Status: 429, Header: http.Header{"Retry-After": {"3"}}}, pderrors.Retry, pderrors.ReasonRateLimited},
		{"hang until the client times out", pdsim.Fault{Path: "/oauth/token", Hang: true}, pderrors.Retry, pderrors.ReasonTimeout},
		{"dropped connection", pdsim.Fault{Path: "/oauth/token", Drop: true}, pderrors.Retry, pderrors.ReasonNetwork},
		{"200 garbage", pdsim.Fault{Path: "/oauth/token", Status: 200, Body: "<html>oops</html>"}, pderrors.Retry, pderrors.ReasonUnexpected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, _, c := simClient(t, pdsim.Config{})
			c.HTTP = &http.Client{Timeout: 200 * time.Millisecond}
			tok, err := c.Exchange(context.Background(), sim.IssueCode(0, simRedirect), simRedirect)
			if err != nil {
				t.Fatalf("Exchange() error = %v", err)
			}
			sim.Inject(tt.fault)
			_, err = c.Refresh(context.Background(), tok.RefreshToken)
			wantReason(t, "Refresh()", err, tt.wantAction, tt.wantReason)
		})
	}
}
