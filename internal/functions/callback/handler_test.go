package callback

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/apigw"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oauthstate"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/uninstall"
)

// redirectURI is the callback URL registered with the simulator, as in Developer Hub.
const redirectURI = "https://abc123.execute-api.eu-central-1.amazonaws.com/oauth/callback"

// t0 is where every test clock starts.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// The whole run's log output and every secret the tests saw: TestMain checks, after all tests,
// that no secret reached the log.
var (
	logSink = &testenv.Buffer{}
	secrets = &testenv.Secrets{}
)

func TestMain(m *testing.M) { os.Exit(testenv.MainCheckingLogs(m, logSink, secrets)) }

// env is one test's world: its own table, queue, topic and secret in moto, its own simulator
// and clock, and a handler wired as main.go wires it.
type env struct {
	t     *testing.T
	clock *pdsim.Clock
	sim   *pdsimtest.TestServer
	res   *infra.Resources
	store *tokenstore.Store
	inbox *testenv.AlertInbox
	sqs   *sqs.Client
	h     *handler
	aws   aws.Config
	// tokenFaults are the ids of injected faults on /oauth/token.
	tokenFaults []string
}

// envOption changes the handler (and its Installer) before the test starts.
type envOption func(*handler)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	clock := pdsim.NewClock(t0)
	sim := pdsimtest.New(t, pdsim.Config{
		ClientID:     testenv.ClientID,
		ClientSecret: testenv.ClientSecret,
		RedirectURI:  redirectURI,
		Now:          clock.Now,
	})
	store := &tokenstore.Store{DB: testenv.SerialWrites(dynamodb.NewFromConfig(cfg)), Table: res.TableName, Now: clock.Now}
	e := &env{
		t:     t,
		clock: clock,
		sim:   sim,
		res:   res,
		store: store,
		inbox: testenv.SubscribeAlerts(t, cfg, res.AlertsTopicARN),
		sqs:   sqs.NewFromConfig(cfg),
		aws:   cfg,
	}
	creds := newCredentialSource(cfg, res.SecretID)
	oauth := &pdoauth.Client{
		BaseURL:     sim.URL,
		Credentials: creds.OAuthCredentials,
		HTTP:        sim.HTTP.Client(),
		Now:         clock.Now,
	}
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(logSink, testenv.TestLogWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
	notifier := alerts.Notifier{
		Sender: &alerts.Publisher{
			SNS:      sns.NewFromConfig(cfg),
			TopicARN: res.AlertsTopicARN,
			Source:   "callback",
			Marks:    store,
		},
		Log: log,
	}
	e.h = &handler{
		Flow: &install.Flow{
			Creds: creds,
			OAuth: oauth,
			Installer: &install.Installer{
				OAuth:                 oauth,
				Users:                 newUsersClient(sim),
				Claims:                store,
				Store:                 store,
				Jobs:                  &jobs.Enqueuer{SQS: e.sqs, QueueURL: res.JobsQueueURL},
				InvalidateCredentials: creds.Invalidate,
				Alerts:                notifier,
				Log:                   log,
				RedirectURI:           redirectURI,
				Retry:                 install.RetryPolicy{Attempts: 3, Backoff: func(int) time.Duration { return 10 * time.Millisecond }},
			},
			Alerts: notifier,
			Log:    log,
			Now:    clock.Now,
		},
		Uninstall: &uninstall.Uninstaller{Creds: creds, Store: store, Alerts: notifier, Log: log, Now: clock.Now},
		Alerts:    notifier,
		Log:       log,
	}
	for _, o := range opts {
		o(e.h)
	}
	return e
}

// handle runs the handler and checks what every answer must satisfy.
func (e *env) handle(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	e.t.Helper()
	return handle(e.t, e.h, ev)
}

func handle(t *testing.T, h *handler, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	resp, err := h.Handle(t.Context(), ev)
	if err != nil {
		t.Fatalf("Handle(%s %s) error = %v, want nil (errors become pages)", ev.RequestContext.HTTP.Method, ev.RawPath, err)
	}
	checkResponse(t, ev, resp)
	return resp
}

// checkResponse asserts the headers every answer carries and that no secret is in it.
func checkResponse(t *testing.T, ev events.APIGatewayV2HTTPRequest, resp events.APIGatewayV2HTTPResponse) {
	t.Helper()
	want := map[string]string{
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	}
	for k, v := range want {
		if got := resp.Headers[k]; got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if ct := resp.Headers["Content-Type"]; ct != "text/html; charset=utf-8" && ct != "application/json" {
		t.Errorf("Content-Type = %q, want HTML or JSON", ct)
	}
	if resp.Headers["Content-Type"] == "text/html; charset=utf-8" {
		if csp := resp.Headers["Content-Security-Policy"]; !strings.HasPrefix(csp, "default-src 'none'; style-src 'unsafe-inline'") {
			t.Errorf("Content-Security-Policy = %q, want it to start with default-src 'none'; style-src 'unsafe-inline'", csp)
		}
		if !strings.HasPrefix(resp.Body, "<!doctype html>") {
			t.Errorf("HTML body does not start with a doctype: %.80q", resp.Body)
		}
	}
	if resp.StatusCode >= 500 && strings.Contains(strings.ToLower(resp.Body), "tokenstore") {
		t.Errorf("5xx body shows internal text: %.200q", resp.Body)
	}
	for _, leak := range secrets.FoundIn(resp.Body) {
		t.Errorf("response body contains %s", leak)
	}
	q, _ := url.ParseQuery(ev.RawQueryString)
	for _, k := range []string{"code", "state"} {
		if v := q.Get(k); len(v) >= 8 && strings.Contains(resp.Body, v) {
			t.Errorf("response body contains the request's %s", k)
		}
	}
}

// loadEvent reads testdata/name.
func loadEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("decode fixture %s: %v", name, err)
	}
	return ev
}

// callbackEvent is the callback fixture with query q (code and state as given).
func callbackEvent(t *testing.T, q url.Values) events.APIGatewayV2HTTPRequest {
	t.Helper()
	ev := loadEvent(t, "callback.json")
	ev.RawQueryString = q.Encode()
	ev.QueryStringParameters = map[string]string{}
	for k := range q {
		ev.QueryStringParameters[k] = q.Get(k)
	}
	return ev
}

// event is a minimal literal request.
func event(method, path, rawQuery string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RawPath:        path,
		RawQueryString: rawQuery,
		Headers:        map[string]string{},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: "$default",
			HTTP:  events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	}
}

// issueCode mints a code for the simulator's default user and remembers it as a secret.
func (e *env) issueCode() string {
	e.t.Helper()
	code := e.sim.IssueCode(0, redirectURI)
	if code == "" {
		e.t.Fatal("IssueCode = \"\", want a code")
	}
	secrets.Add("authorization code", code)
	return code
}

// issueState returns a state signed with the test state key at the current test time.
func (e *env) issueState() string {
	e.t.Helper()
	s := &oauthstate.Signer{Key: []byte(testenv.StateKey), Now: e.clock.Now}
	state, err := s.Issue()
	if err != nil {
		e.t.Fatalf("Issue() = %v", err)
	}
	secrets.AddWhole("state", state)
	return state
}

// callback runs GET /oauth/callback?code=…&state=… (state omitted when empty).
func (e *env) callback(code, state string) events.APIGatewayV2HTTPResponse {
	e.t.Helper()
	q := url.Values{"code": {code}}
	if state != "" {
		q.Set("state", state)
	}
	return e.handle(callbackEvent(e.t, q))
}

// tokenCalls is how many authorization_code exchanges reached the simulator, including those
// answered by an injected token-endpoint fault (which the grant counters do not see).
func (e *env) tokenCalls() int {
	c := e.sim.Counters()
	n := c.TokenByGrant["authorization_code"]
	for _, id := range e.tokenFaults {
		n += c.Faults[id]
	}
	return n
}

// inject adds a simulator fault, remembering it when it targets the token endpoint.
func (e *env) inject(f pdsim.Fault) {
	id := e.sim.Inject(f)
	if f.Path == "/oauth/token" {
		e.tokenFaults = append(e.tokenFaults, id)
	}
}

// installation reads the default user's installation and registers its tokens as secrets.
func (e *env) installation() (tokenstore.Installation, error) {
	e.t.Helper()
	in, err := e.store.Get(e.t.Context(), tokenstore.InstallationID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID})
	if err == nil {
		secrets.Add("access token", in.AccessToken)
		secrets.Add("refresh token", in.RefreshToken)
	}
	return in, err
}

// alertReasons drains the inbox and returns the alerts' reasons, sorted.
func (e *env) alertReasons() []string {
	e.t.Helper()
	var got []string
	for _, a := range e.inbox.Drain(e.t) {
		got = append(got, a.Attributes["reason"])
		for _, leak := range secrets.FoundIn(a.Message + a.Subject) {
			e.t.Errorf("alert %q contains %s", a.Subject, leak)
		}
	}
	slices.Sort(got)
	return got
}

// jobs drains the jobs queue.
func (e *env) jobs() []jobs.Job {
	e.t.Helper()
	var got []jobs.Job
	for _, m := range testenv.ReceiveAll(e.t, e.aws, e.res.JobsQueueURL, -1, 0) {
		j, err := jobs.Parse(aws.ToString(m.Body))
		if err != nil {
			e.t.Fatalf("jobs.Parse(queued message) = %v", err)
		}
		got = append(got, j)
	}
	return got
}

// wantStatus fails the test unless resp has status and its body contains text.
func wantPage(t *testing.T, resp events.APIGatewayV2HTTPResponse, status int, text string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %.300q)", resp.StatusCode, status, resp.Body)
	}
	if !strings.Contains(resp.Body, text) {
		t.Errorf("body does not contain %q: %.400q", text, resp.Body)
	}
}

// wantRestartLink fails unless the page links to the install route.
func wantRestartLink(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
	t.Helper()
	if !strings.Contains(resp.Body, `href="/oauth/install"`) {
		t.Errorf("page has no link to /oauth/install: %.400q", resp.Body)
	}
}

// noClientRedirects is an HTTP client that returns redirects instead of following them.
func noClientRedirects(base *http.Client) *http.Client {
	c := *base
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// authorize follows an install redirect to the simulator's consent page and returns the
// callback query Pipedrive redirects the browser to.
func (e *env) authorize(location string) url.Values {
	e.t.Helper()
	resp, err := noClientRedirects(e.sim.HTTP.Client()).Get(location)
	if err != nil {
		e.t.Fatalf("GET authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize status = %d, want 302", resp.StatusCode)
	}
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatalf("authorize Location: %v", err)
	}
	if got := back.Scheme + "://" + back.Host + back.Path; got != redirectURI {
		e.t.Fatalf("authorize redirected to %s, want %s", got, redirectURI)
	}
	q := back.Query()
	secrets.Add("authorization code", q.Get("code"))
	return q
}

func TestInstallRedirectCarriesValidState(t *testing.T) {
	e := newEnv(t)
	resp := e.handle(loadEvent(t, "install.json"))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("install status = %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Headers["Location"])
	if err != nil {
		t.Fatalf("Location %q: %v", resp.Headers["Location"], err)
	}
	q := loc.Query()
	secrets.AddWhole("state", q.Get("state"))
	if got, want := loc.Scheme+"://"+loc.Host+loc.Path, e.sim.URL+"/oauth/authorize"; got != want {
		t.Errorf("Location = %s, want %s", got, want)
	}
	if q.Get("client_id") != testenv.ClientID || q.Get("redirect_uri") != redirectURI {
		t.Errorf("Location query client_id=%q redirect_uri=%q, want %q and %q", q.Get("client_id"), q.Get("redirect_uri"), testenv.ClientID, redirectURI)
	}
	// The state is bound to the browser by a __Host- cookie (issue 11, finding 2).
	binding := stateCookieOf(t, resp)
	secrets.Add("state binding", binding)
	s := &oauthstate.Signer{Key: []byte(testenv.StateKey), Now: e.clock.Now}
	if err := s.VerifyBound(q.Get("state"), binding); err != nil {
		t.Errorf("VerifyBound(state from Location, cookie) = %v, want nil", err)
	}
	if err := s.Verify(q.Get("state")); !errors.Is(err, oauthstate.ErrStateUnbound) {
		t.Errorf("Verify(state from Location) without the cookie = %v, want ErrStateUnbound", err)
	}
	e.clock.Advance(oauthstate.DefaultTTL + time.Second)
	if err := s.VerifyBound(q.Get("state"), binding); !errors.Is(err, oauthstate.ErrStateExpired) {
		t.Errorf("VerifyBound(state) after its TTL = %v, want ErrStateExpired", err)
	}
	if got := e.alertReasons(); len(got) != 0 {
		t.Errorf("alerts = %v, want none", got)
	}
}

func TestHappyPathEndToEnd(t *testing.T) {
	e := newEnv(t)
	install := e.handle(loadEvent(t, "install.json"))
	back := e.authorize(install.Headers["Location"])
	if back.Get("state") == "" || back.Get("code") == "" {
		t.Fatalf("callback query has code %t, state %t; want both", back.Get("code") != "", back.Get("state") != "")
	}
	resp := e.handle(callbackEvent(t, back))
	wantPage(t, resp, http.StatusOK, "The app is installed")

	in, err := e.installation()
	if err != nil {
		t.Fatalf("store.Get after install = %v", err)
	}
	if in.AccessToken == "" || in.RefreshToken == "" {
		t.Errorf("stored tokens empty: access %t refresh %t", in.AccessToken == "", in.RefreshToken == "")
	}
	if in.APIDomain != e.sim.URL {
		t.Errorf("APIDomain = %q, want %q", in.APIDomain, e.sim.URL)
	}
	if !slices.Equal(in.Scopes, pdsim.DefaultScopes) {
		t.Errorf("Scopes = %v, want %v", in.Scopes, pdsim.DefaultScopes)
	}
	if in.Version != 1 || in.Status != tokenstore.StatusActive {
		t.Errorf("Version, Status = %d, %s; want 1, active", in.Version, in.Status)
	}
	if want := t0.Add(pdsim.DefaultAccessTokenTTL).Truncate(time.Second); !in.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", in.ExpiresAt, want)
	}
	if in.CodeHash != tokenstore.HashCode(back.Get("code")) {
		t.Errorf("CodeHash = %q, want the code's SHA-256", in.CodeHash)
	}
	// The stored access token works against the API domain.
	if _, err := e.h.Flow.Installer.Users.Me(t.Context(), in.APIDomain, in.AccessToken); err != nil {
		t.Errorf("Me(stored access token) = %v, want nil", err)
	}

	got := e.jobs()
	if len(got) != 1 {
		t.Fatalf("jobs queued = %d, want 1", len(got))
	}
	j := got[0]
	if j.Kind != jobs.KindRegisterWebhooks || j.CompanyID != pdsim.DefaultCompanyID || j.UserID != pdsim.DefaultUserID || j.ID == "" {
		t.Errorf("job = %+v, want register_webhooks for %d:%d", j, pdsim.DefaultCompanyID, pdsim.DefaultUserID)
	}
	if got := e.alertReasons(); len(got) != 0 {
		t.Errorf("alerts = %v, want none", got)
	}
}

func TestSuccessURLRedirects(t *testing.T) {
	e := newEnv(t, func(h *handler) {
		h.Config.SuccessURL = "https://app.example/installed?from=pipedrive"
		h.Flow.Installer.Jobs = nil
	})
	resp := e.callback(e.issueCode(), e.issueState())
	if resp.StatusCode != http.StatusFound || resp.Headers["Location"] != "https://app.example/installed?from=pipedrive" {
		t.Errorf("status, Location = %d, %q; want 302 to the success URL", resp.StatusCode, resp.Headers["Location"])
	}
	if got := e.jobs(); len(got) != 0 {
		t.Errorf("jobs queued without a jobs queue = %d, want 0", len(got))
	}
}

func TestDeny(t *testing.T) {
	e := newEnv(t)
	if err := e.sim.SetAuthorizeMode(pdsim.AuthorizeDeny); err != nil {
		t.Fatal(err)
	}
	install := e.handle(loadEvent(t, "install.json"))
	back := e.authorize(install.Headers["Location"])
	if back.Get("error") != "user_denied" {
		t.Fatalf("denied authorize returned error=%q, want user_denied", back.Get("error"))
	}
	for _, ev := range []events.APIGatewayV2HTTPRequest{callbackEvent(t, back), loadEvent(t, "deny.json")} {
		resp := e.handle(ev)
		wantPage(t, resp, http.StatusOK, "Installation cancelled")
		wantRestartLink(t, resp)
	}
	if n := e.tokenCalls(); n != 0 {
		t.Errorf("token calls after deny = %d, want 0", n)
	}
	if got := e.alertReasons(); len(got) != 0 {
		t.Errorf("alerts = %v, want none", got)
	}
}

// oauthFault is a token-endpoint answer with Pipedrive's error body.
func oauthFault(status int, msg, code string, times int) pdsim.Fault {
	body, _ := json.Marshal(map[string]any{"success": false, "message": msg, "error": code})
	return pdsim.Fault{Method: http.MethodPost, Path: "/oauth/token", Status: status, Body: string(body), Times: times,
		Header: http.Header{"Content-Type": {"application/json"}}}
}

// TestOAuthErrorRows drives every row of Pipedrive's OAuth status table that a callback can
// meet, through the simulator's natural behaviour where it has one and injected answers where
// it does not.
func TestOAuthErrorRows(t *testing.T) {
	tests := []struct {
		name       string
		opts       []envOption
		setup      func(e *env) (code string) // returns the code to call back with
		status     int
		page       string
		restart    bool     // the page links to /oauth/install
		alerts     []string // expected alert reasons
		tokenCalls int      // token exchanges the callback made
	}{
		{
			name: "authorization_code expired (fake clock)",
			setup: func(e *env) string {
				code := e.issueCode()
				e.clock.Advance(pdsim.DefaultCodeTTL + time.Second)
				return code
			},
			status: http.StatusBadRequest, page: "This install link has expired", restart: true, tokenCalls: 1,
		},
		{
			name: "authorization_code invalid: used elsewhere before",
			setup: func(e *env) string {
				code := e.issueCode()
				c := &pdoauth.Client{BaseURL: e.sim.URL, Credentials: pdoauth.StaticCredentials(testenv.ClientID, testenv.ClientSecret), HTTP: e.sim.HTTP.Client()}
				tok, err := c.Exchange(e.t.Context(), code, redirectURI)
				if err != nil {
					e.t.Fatalf("first Exchange = %v", err)
				}
				secrets.Add("access token", tok.AccessToken)
				secrets.Add("refresh token", tok.RefreshToken)
				return code
			},
			status: http.StatusBadRequest, page: "This install link is invalid or expired", restart: true, tokenCalls: 1,
		},
		{
			name: "authorization_code invalid: never issued",
			setup: func(e *env) string {
				secrets.Add("authorization code", "never-issued-code-1234")
				return "never-issued-code-1234"
			},
			status: http.StatusBadRequest, page: "This install link is invalid or expired", restart: true, tokenCalls: 1,
		},
		{
			name: "invalid client: wrong client secret in the secret",
			setup: func(e *env) string {
				e.putSecret(testenv.ClientID, "wrong-Zq8Lm3Xp0Kd7Tw5Hy1-0001", testenv.StateKey)
				return e.issueCode()
			},
			status: http.StatusInternalServerError, page: "Something went wrong", alerts: []string{"client_invalid"}, tokenCalls: 1,
		},
		{
			name:   "redirect_uri invalid: differs from Developer Hub",
			opts:   []envOption{func(h *handler) { h.Flow.Installer.RedirectURI = "https://other.example/oauth/callback" }},
			setup:  func(e *env) string { return e.issueCode() },
			status: http.StatusInternalServerError, page: "Something went wrong", alerts: []string{"redirect_uri_mismatch"}, tokenCalls: 1,
		},
		{
			name:   "redirect_uri is not a valid URI",
			opts:   []envOption{func(h *handler) { h.Flow.Installer.RedirectURI = "not a uri" }},
			setup:  func(e *env) string { return e.issueCode() },
			status: http.StatusInternalServerError, page: "Something went wrong", alerts: []string{"redirect_uri_not_valid_uri"}, tokenCalls: 1,
		},
		{
			name: "cannot retrieve client credentials",
			setup: func(e *env) string {
				e.inject(oauthFault(400, pdsim.MsgClientCredentialsMissing, pdsim.ErrCodeInvalidClient, 0))
				return e.issueCode()
			},
			status: http.StatusInternalServerError, page: "Something went wrong", alerts: []string{"client_credentials_missing"}, tokenCalls: 1,
		},
		{
			name: "content must be application/x-www-form-urlencoded",
			setup: func(e *env) string {
				e.inject(oauthFault(400, pdsim.MsgContentType, pdsim.ErrCodeInvalidRequest, 0))
				return e.issueCode()
			},
			status: http.StatusInternalServerError, page: "Something went wrong", alerts: []string{"wrong_content_type"}, tokenCalls: 1,
		},
		{
			name: "missing grant_type",
			setup: func(e *env) string {
				e.inject(oauthFault(400, pdsim.MsgMissingGrantType, pdsim.ErrCodeInvalidRequest, 0))
				return e.issueCode()
			},
			status: http.StatusInternalServerError, page: "Something went wrong", alerts: []string{"missing_grant_type"}, tokenCalls: 1,
		},
		{
			name: "unsupported grant type",
			setup: func(e *env) string {
				e.inject(oauthFault(400, pdsim.MsgUnsupportedGrantType, pdsim.ErrCodeUnsupportedGrantType, 0))
				return e.issueCode()
			},
			status: http.StatusInternalServerError, page: "Something went wrong", alerts: []string{"unsupported_grant_type"}, tokenCalls: 1,
		},
		{
			name: "500 after the bounded retries",
			setup: func(e *env) string {
				e.inject(pdsim.Fault{Path: "/oauth/token", Status: 500})
				return e.issueCode()
			},
			status: http.StatusServiceUnavailable, page: "Pipedrive is not answering, try again", restart: true, tokenCalls: 3,
		},
		{
			name: "503 after the bounded retries",
			setup: func(e *env) string {
				e.inject(pdsim.Fault{Path: "/oauth/token", Status: 503})
				return e.issueCode()
			},
			status: http.StatusServiceUnavailable, page: "Pipedrive is not answering, try again", restart: true, tokenCalls: 3,
		},
		{
			name: "503 company database under maintenance",
			setup: func(e *env) string {
				e.inject(pdsim.Fault{Path: "/oauth/token", Status: 503, Body: "<html><body><h1>" + pdsim.MsgMaintenance + "</h1></body></html>",
					Header: http.Header{"Content-Type": {"text/html"}}})
				return e.issueCode()
			},
			status: http.StatusServiceUnavailable, page: "Pipedrive is not answering, try again", restart: true, tokenCalls: 3,
		},
		{
			name: "app cannot be installed for requested company",
			setup: func(e *env) string {
				e.inject(oauthFault(400, pdsim.MsgNotInstallable, "", 0))
				return e.issueCode()
			},
			status: http.StatusForbidden, page: "cannot be installed for this company", tokenCalls: 1,
		},
		{
			name: "users/me fails after the exchange",
			setup: func(e *env) string {
				e.sim.Inject(pdsim.Fault{Path: "/api/v1/users/me", Status: 500})
				return e.issueCode()
			},
			status: http.StatusBadGateway, page: "could not read your user details", restart: true, tokenCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			code := tt.setup(e)
			e.sim.ResetCounters()
			resp := e.callback(code, "")
			wantPage(t, resp, tt.status, tt.page)
			if tt.restart {
				wantRestartLink(t, resp)
			}
			if n := e.tokenCalls(); n != tt.tokenCalls {
				t.Errorf("token calls = %d, want %d", n, tt.tokenCalls)
			}
			if got := e.alertReasons(); !slices.Equal(got, tt.alerts) {
				t.Errorf("alerts = %v, want %v", got, tt.alerts)
			}
			if _, err := e.installation(); !errors.Is(err, tokenstore.ErrNotFound) {
				t.Errorf("store.Get after a failed callback = %v, want ErrNotFound", err)
			}
			if got := e.jobs(); len(got) != 0 {
				t.Errorf("jobs queued after a failed callback = %d, want 0", len(got))
			}
		})
	}
}

func TestReloadWithUsedCodeSucceedsWithoutSecondExchange(t *testing.T) {
	e := newEnv(t)
	code, state := e.issueCode(), e.issueState()
	first := e.callback(code, state)
	wantPage(t, first, http.StatusOK, "The app is installed")
	second := e.callback(code, state)
	wantPage(t, second, http.StatusOK, "The app is installed")
	if n := e.tokenCalls(); n != 1 {
		t.Errorf("token calls after a reload = %d, want 1", n)
	}
	in, err := e.installation()
	if err != nil || in.Version != 1 {
		t.Errorf("installation after reload = version %d, err %v; want version 1", in.Version, err)
	}
	if got := e.jobs(); len(got) != 1 {
		t.Errorf("jobs after a reload = %d, want 1", len(got))
	}
}

func TestState(t *testing.T) {
	forgedSigner := &oauthstate.Signer{Key: []byte("another-key-that-is-long-enough-to-sign-0123456789")}
	tests := []struct {
		name         string
		requireState bool
		state        func(e *env) string
		ok           bool
	}{
		{"valid state", false, (*env).issueState, true},
		// A state issued without a browser binding (the older form) is refused when states
		// are required: only /oauth/install's bound state, with its cookie, counts then.
		{"unbound state, RequireState on", true, (*env).issueState, false},
		{"forged state", false, func(e *env) string {
			forgedSigner.Now = e.clock.Now
			s, err := forgedSigner.Issue()
			if err != nil {
				e.t.Fatal(err)
			}
			return s
		}, false},
		{"expired state", false, func(e *env) string {
			s := e.issueState()
			e.clock.Advance(oauthstate.DefaultTTL + time.Minute)
			return s
		}, false},
		{"malformed state", false, func(*env) string { return "not-a-state-at-all" }, false},
		{"missing state, RequireState off", false, func(*env) string { return "" }, true},
		{"missing state, RequireState on", true, func(*env) string { return "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(h *handler) { h.Flow.RequireState = tt.requireState })
			state := tt.state(e)
			code := e.issueCode() // after any clock move, so the code itself is fresh
			resp := e.callback(code, state)
			if tt.ok {
				wantPage(t, resp, http.StatusOK, "The app is installed")
				return
			}
			wantPage(t, resp, http.StatusBadRequest, "This install link is invalid or expired")
			wantRestartLink(t, resp)
			if n := e.tokenCalls(); n != 0 {
				t.Errorf("token calls with a rejected state = %d, want 0", n)
			}
			if got := e.alertReasons(); len(got) != 0 {
				t.Errorf("alerts = %v, want none", got)
			}
		})
	}
}

func TestPipedrive503ThenSuccess(t *testing.T) {
	e := newEnv(t)
	e.inject(pdsim.Fault{Path: "/oauth/token", Status: 503, Times: 1})
	resp := e.callback(e.issueCode(), e.issueState())
	wantPage(t, resp, http.StatusOK, "The app is installed")
	if n := e.tokenCalls(); n != 2 {
		t.Errorf("token calls = %d, want 2 (one 503, one success)", n)
	}
	if got := e.alertReasons(); len(got) != 0 {
		t.Errorf("alerts = %v, want none", got)
	}
}

func TestOutageReleasesClaimSoReloadCanSucceed(t *testing.T) {
	e := newEnv(t)
	e.inject(pdsim.Fault{Path: "/oauth/token", Status: 500, Times: 3})
	code := e.issueCode()
	wantPage(t, e.callback(code, ""), http.StatusServiceUnavailable, "Pipedrive is not answering")
	// The user reloads once Pipedrive is back: the same code works.
	wantPage(t, e.callback(code, ""), http.StatusOK, "The app is installed")
	if n := e.tokenCalls(); n != 4 {
		t.Errorf("token calls = %d, want 4 (three 500s, one success)", n)
	}
}

func TestRetriesStopAtTheDeadline(t *testing.T) {
	e := newEnv(t, func(h *handler) {
		h.Flow.Installer.Retry = install.RetryPolicy{Attempts: 5, Backoff: func(int) time.Duration { return 2 * time.Second }}
		h.Flow.Installer.DeadlineReserve = 500 * time.Millisecond
	})
	e.inject(pdsim.Fault{Path: "/oauth/token", Status: 503})
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	resp, err := e.h.Handle(ctx, callbackEvent(t, url.Values{"code": {e.issueCode()}}))
	if err != nil {
		t.Fatalf("Handle error = %v", err)
	}
	wantPage(t, resp, http.StatusServiceUnavailable, "Pipedrive is not answering")
	if d := time.Since(start); d > time.Second {
		t.Errorf("Handle took %v with a 2 s backoff and 1.5 s deadline, want an early stop", d)
	}
	if n := e.tokenCalls(); n != 1 {
		t.Errorf("token calls = %d, want 1 (the backoff does not fit the deadline)", n)
	}
}

// TestSlowAttemptsLeaveTheReserve: an attempt that runs to the HTTP client's timeout must not
// carry the request past its deadline. In production the OAuth and users/me clients time out
// after 5 s and the function after 15 s, so three hung attempts would outlive the function and
// the user would get API Gateway's bare error instead of a page. Scaled down here: 1 s client
// timeout, 1.8 s deadline, 0.5 s reserve.
func TestSlowAttemptsLeaveTheReserve(t *testing.T) {
	for _, path := range []string{"/oauth/token", "/api/v1/users/me"} {
		t.Run(path, func(t *testing.T) {
			const reserve = 500 * time.Millisecond
			e := newEnv(t, func(h *handler) { h.Flow.Installer.DeadlineReserve = reserve })
			slow := *e.sim.HTTP.Client()
			slow.Timeout = time.Second
			e.h.Flow.Installer.OAuth.(*pdoauth.Client).HTTP = &slow
			e.h.Flow.Installer.Users = &pdapi.Client{HTTP: &slow}
			e.inject(pdsim.Fault{Path: path, Hang: true})
			ctx, cancel := context.WithTimeout(t.Context(), 1800*time.Millisecond)
			defer cancel()
			deadline, _ := ctx.Deadline()
			resp, err := e.h.Handle(ctx, callbackEvent(t, url.Values{"code": {e.issueCode()}}))
			if err != nil {
				t.Fatalf("Handle error = %v", err)
			}
			if left := time.Until(deadline); left < reserve/2 {
				t.Errorf("Handle returned %v before the deadline, want at least %v of the %v reserve left", left.Round(time.Millisecond), reserve/2, reserve)
			}
			if resp.StatusCode < 500 {
				t.Errorf("status = %d, want a 5xx try-again page", resp.StatusCode)
			}
			if !strings.Contains(resp.Body, "Try again") {
				t.Errorf("body has no try-again link: %.300q", resp.Body)
			}
		})
	}
}

func TestConcurrentCallbacksWithSameCode(t *testing.T) {
	e := newEnv(t)
	// Slow the exchange so the second request arrives while the first holds the claim.
	e.sim.Inject(pdsim.Fault{Path: "/oauth/token", Latency: 400 * time.Millisecond})
	ev := callbackEvent(t, url.Values{"code": {e.issueCode()}, "state": {e.issueState()}})
	var wg sync.WaitGroup
	resps := make([]events.APIGatewayV2HTTPResponse, 2)
	for i := range resps {
		wg.Go(func() { resps[i] = e.handle(ev) })
	}
	wg.Wait()
	for i, r := range resps {
		if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "The app is installed") {
			t.Errorf("callback %d status = %d, want 200 success (body %.200q)", i, r.StatusCode, r.Body)
		}
	}
	if n := e.tokenCalls(); n != 1 {
		t.Errorf("token calls for two concurrent callbacks with one code = %d, want 1", n)
	}
	in, err := e.installation()
	if err != nil || in.Version != 1 {
		t.Errorf("installation = version %d, err %v; want version 1", in.Version, err)
	}
}

func TestBusyWhenOtherExchangeOutlastsTheWait(t *testing.T) {
	e := newEnv(t, func(h *handler) {
		h.Flow.Installer.ClaimWait = 200 * time.Millisecond
		h.Flow.Installer.ClaimPoll = 50 * time.Millisecond
	})
	code := e.issueCode()
	// Another instance holds the claim and never finishes (it crashed).
	if _, err := e.store.ClaimCode(t.Context(), tokenstore.HashCode(code), time.Minute); err != nil {
		t.Fatalf("ClaimCode = %v", err)
	}
	resp := e.callback(code, "")
	wantPage(t, resp, http.StatusServiceUnavailable, "Still working on it")
	if n := e.tokenCalls(); n != 0 {
		t.Errorf("token calls while another request holds the code = %d, want 0", n)
	}
}

// TestAbandonedClaimOffersARestart: a request that claimed the code and died (the function
// timed out or crashed) leaves its claim behind for CodeClaimTTL. Once the claim is older than
// any callback can run, "reload in a few seconds" would never come true: the user must be
// offered a restart instead.
func TestAbandonedClaimOffersARestart(t *testing.T) {
	e := newEnv(t, func(h *handler) {
		h.Flow.Installer.ClaimWait = 200 * time.Millisecond
		h.Flow.Installer.ClaimPoll = 50 * time.Millisecond
	})
	code := e.issueCode()
	if _, err := e.store.ClaimCode(t.Context(), tokenstore.HashCode(code), install.DefaultClaimTTL); err != nil {
		t.Fatalf("ClaimCode = %v", err)
	}
	e.clock.Advance(2 * time.Minute)
	resp := e.callback(code, "")
	wantPage(t, resp, http.StatusBadRequest, "This install link is invalid or expired")
	wantRestartLink(t, resp)
	if n := e.tokenCalls(); n != 0 {
		t.Errorf("token calls for an abandoned claim = %d, want 0", n)
	}
}

func TestTwoCodesForTheSameUserConcurrently(t *testing.T) {
	e := newEnv(t)
	e.sim.Inject(pdsim.Fault{Path: "/oauth/token", Latency: 100 * time.Millisecond})
	codes := []string{e.issueCode(), e.issueCode()}
	var wg sync.WaitGroup
	resps := make([]events.APIGatewayV2HTTPResponse, len(codes))
	for i, code := range codes {
		wg.Go(func() { resps[i] = e.handle(callbackEvent(t, url.Values{"code": {code}})) })
	}
	wg.Wait()
	for i, r := range resps {
		if r.StatusCode != http.StatusOK {
			t.Errorf("callback %d status = %d, want 200 (body %.200q)", i, r.StatusCode, r.Body)
		}
	}
	in, err := e.installation()
	if err != nil {
		t.Fatalf("store.Get = %v", err)
	}
	if in.Version != 2 || in.Status != tokenstore.StatusActive {
		t.Errorf("Version, Status = %d, %s; want 2, active", in.Version, in.Status)
	}
	// Whichever install won, its tokens are a working pair.
	if _, err := e.h.Flow.Installer.Users.Me(t.Context(), in.APIDomain, in.AccessToken); err != nil {
		t.Errorf("Me(stored access token) = %v, want nil", err)
	}
	if !slices.Contains([]string{tokenstore.HashCode(codes[0]), tokenstore.HashCode(codes[1])}, in.CodeHash) {
		t.Errorf("CodeHash is neither code's hash")
	}
	if got := e.jobs(); len(got) != 2 || got[0].ID == got[1].ID {
		t.Errorf("jobs = %d (ids distinct %t), want 2 with distinct ids", len(got), len(got) == 2 && got[0].ID != got[1].ID)
	}
}

// gateway serves the handler over HTTP the way API Gateway does, so the simulator can send
// Pipedrive's uninstall request to it.
func (e *env) gateway() string {
	e.t.Helper()
	g := &apigw.Gateway{Function: invoker{t: e.t, h: e.h}}
	srv := httptest.NewServer(g)
	e.t.Cleanup(srv.Close)
	return srv.URL
}

// invoker runs the handler on a JSON event, as the Lambda runtime does.
type invoker struct {
	t *testing.T
	h *handler
}

func (i invoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	resp, err := i.h.Handle(ctx, ev)
	if err != nil {
		return nil, err
	}
	checkResponse(i.t, ev, resp)
	return json.Marshal(resp)
}

// installDefault installs the simulator's default user through the callback.
func (e *env) installDefault() tokenstore.Installation {
	e.t.Helper()
	wantPage(e.t, e.callback(e.issueCode(), ""), http.StatusOK, "The app is installed")
	in, err := e.installation()
	if err != nil {
		e.t.Fatalf("store.Get after install = %v", err)
	}
	return in
}

func TestUninstallFromSimulator(t *testing.T) {
	tests := []struct {
		name        string
		opts        []pdsim.UninstallOption
		status      int
		uninstalled bool
	}{
		{"right credentials", nil, http.StatusOK, true},
		{"ids as strings", []pdsim.UninstallOption{pdsim.WithStringIDs()}, http.StatusOK, true},
		{"epoch timestamp", []pdsim.UninstallOption{pdsim.WithEpochTimestamp()}, http.StatusOK, true},
		{"wrong secret", []pdsim.UninstallOption{pdsim.WithCredentials(testenv.ClientID, "wrong-secret"), pdsim.WithTokensKept()}, http.StatusUnauthorized, false},
		{"wrong client id", []pdsim.UninstallOption{pdsim.WithCredentials("other-client", testenv.ClientSecret), pdsim.WithTokensKept()}, http.StatusUnauthorized, false},
		{"missing credentials", []pdsim.UninstallOption{pdsim.WithoutCredentials(), pdsim.WithTokensKept()}, http.StatusUnauthorized, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			before := e.installDefault()
			status, err := e.sim.Uninstall(t.Context(), e.gateway()+callbackRoute, pdsim.DefaultUserID, tt.opts...)
			if err != nil {
				t.Fatalf("sim.Uninstall = %v", err)
			}
			if status != tt.status {
				t.Errorf("uninstall status = %d, want %d", status, tt.status)
			}
			after, err := e.store.Get(t.Context(), before.ID)
			if err != nil {
				t.Fatalf("store.Get after uninstall = %v", err)
			}
			if tt.uninstalled {
				if after.Status != tokenstore.StatusUninstalled || after.AccessToken != "" || after.RefreshToken != "" {
					t.Errorf("after uninstall: status %s, tokens present %t; want uninstalled without tokens", after.Status, after.AccessToken != "" || after.RefreshToken != "")
				}
				due, err := e.store.Due(t.Context(), t0.Add(365*24*time.Hour), 100)
				if err != nil {
					t.Fatalf("Due = %v", err)
				}
				if slices.Contains(due, before.ID) {
					t.Errorf("uninstalled installation is still due for refresh")
				}
				return
			}
			if after.Status != tokenstore.StatusActive || after.Version != before.Version || after.AccessToken != before.AccessToken {
				t.Errorf("after a rejected uninstall: status %s version %d (was %d), tokens changed %t; want nothing changed",
					after.Status, after.Version, before.Version, after.AccessToken != before.AccessToken)
			}
		})
	}
}

func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func TestUninstallEvents(t *testing.T) {
	right := basicAuth(testenv.ClientID, testenv.ClientSecret)
	body := func(s string) func(*events.APIGatewayV2HTTPRequest) {
		return func(ev *events.APIGatewayV2HTTPRequest) { ev.Body, ev.IsBase64Encoded = s, false }
	}
	tests := []struct {
		name        string
		fixture     string
		auth        string
		mutate      func(*events.APIGatewayV2HTTPRequest)
		status      int
		uninstalled bool
	}{
		{"fixture, ISO timestamp", "uninstall.json", right, nil, 200, true},
		{"base64 body, string ids, epoch ms", "uninstall_base64.json", right, nil, 200, true},
		{"header name capitalised", "uninstall.json", "", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Headers = map[string]string{"Authorization": right}
		}, 200, true},
		{"no timestamp", "uninstall.json", right, body(`{"company_id":3408256,"user_id":5206648}`), 200, true},
		{"unreadable timestamp is tolerated", "uninstall.json", right, body(`{"company_id":3408256,"user_id":5206648,"timestamp":"yesterday"}`), 200, true},
		{"epoch seconds as string", "uninstall.json", right, body(`{"company_id":"3408256","user_id":"5206648","timestamp":"1795783400"}`), 200, true},
		{"unknown installation", "uninstall.json", right, body(`{"company_id":1,"user_id":2}`), 200, false},
		{"wrong secret", "uninstall.json", basicAuth(testenv.ClientID, "nope"), nil, 401, false},
		{"secret with client id swapped", "uninstall.json", basicAuth(testenv.ClientSecret, testenv.ClientID), nil, 401, false},
		{"missing credentials", "uninstall.json", "", nil, 401, false},
		{"bearer instead of basic", "uninstall.json", "Bearer " + testenv.ClientSecret, nil, 401, false},
		{"basic without colon", "uninstall.json", "Basic " + base64.StdEncoding.EncodeToString([]byte(testenv.ClientID)), nil, 401, false},
		{"basic not base64", "uninstall.json", "Basic %%%", nil, 401, false},
		{"body client_id differs", "uninstall.json", right, body(`{"client_id":"someone-else","company_id":3408256,"user_id":5206648}`), 400, false},
		{"malformed JSON", "uninstall.json", right, body(`{"company_id":`), 400, false},
		{"missing user_id", "uninstall.json", right, body(`{"company_id":3408256}`), 400, false},
		{"zero company_id", "uninstall.json", right, body(`{"company_id":0,"user_id":5206648}`), 400, false},
		{"negative user_id", "uninstall.json", right, body(`{"company_id":3408256,"user_id":-5}`), 400, false},
		{"fractional id", "uninstall.json", right, body(`{"company_id":3408256.5,"user_id":5206648}`), 400, false},
		{"non-numeric string id", "uninstall.json", right, body(`{"company_id":"acme","user_id":5206648}`), 400, false},
		{"id as object", "uninstall.json", right, body(`{"company_id":{"id":1},"user_id":5206648}`), 400, false},
		{"empty body", "uninstall.json", right, body(``), 400, false},
		{"JSON array", "uninstall.json", right, body(`[1,2]`), 400, false},
		{"garbage base64 body", "uninstall.json", right, func(ev *events.APIGatewayV2HTTPRequest) { ev.Body, ev.IsBase64Encoded = "!!not base64!!", true }, 400, false},
		{"oversized body", "uninstall.json", right, body(`{"company_id":3408256,"user_id":5206648,"pad":"` + strings.Repeat("x", uninstall.MaxBodyBytes) + `"}`), 413, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			before := e.installDefault()
			ev := loadEvent(t, tt.fixture)
			ev.Headers["authorization"] = tt.auth
			if tt.auth == "" {
				delete(ev.Headers, "authorization")
			}
			if strings.Contains(ev.Body, "REPLACED_BY_TEST") {
				ev.Body = strings.ReplaceAll(ev.Body, "REPLACED_BY_TEST", testenv.ClientID)
			}
			if tt.mutate != nil {
				tt.mutate(&ev)
			}
			resp := e.handle(ev)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, tt.status, resp.Body)
			}
			if resp.Headers["Content-Type"] != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", resp.Headers["Content-Type"])
			}
			if tt.status == 200 && resp.Body != `{"success":true}` {
				t.Errorf("body = %q, want {\"success\":true}", resp.Body)
			}
			if tt.status == 401 && resp.Headers["WWW-Authenticate"] != `Basic realm="uninstall"` {
				t.Errorf("WWW-Authenticate = %q, want Basic realm=\"uninstall\"", resp.Headers["WWW-Authenticate"])
			}
			after, err := e.store.Get(t.Context(), before.ID)
			if err != nil {
				t.Fatalf("store.Get = %v", err)
			}
			if gone := after.Status == tokenstore.StatusUninstalled; gone != tt.uninstalled {
				t.Errorf("uninstalled = %t, want %t (status %s)", gone, tt.uninstalled, after.Status)
			}
			if !tt.uninstalled && after.Version != before.Version {
				t.Errorf("version = %d, want %d: nothing may change", after.Version, before.Version)
			}
		})
	}
}

func TestUninstallIsIdempotent(t *testing.T) {
	e := newEnv(t)
	e.installDefault()
	ev := loadEvent(t, "uninstall_base64.json")
	ev.Headers["authorization"] = basicAuth(testenv.ClientID, testenv.ClientSecret)
	for i := range 2 {
		if resp := e.handle(ev); resp.StatusCode != http.StatusOK || resp.Body != `{"success":true}` {
			t.Errorf("uninstall #%d = %d %q, want 200 {\"success\":true}", i+1, resp.StatusCode, resp.Body)
		}
	}
	// A reinstall after the uninstall works and gets a new version.
	in := e.installDefault()
	if in.Status != tokenstore.StatusActive || in.Version != 3 {
		t.Errorf("reinstall: status %s version %d, want active version 3", in.Status, in.Version)
	}
}

func TestMalformedEvents(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		ev     events.APIGatewayV2HTTPRequest
		status int
		allow  string
	}{
		{"missing requestContext method (fixture)", loadEvent(t, "no_method.json"), 400, ""},
		{"empty event", events.APIGatewayV2HTTPRequest{}, 400, ""},
		{"POST to the callback", event("POST", callbackRoute, "code=x"), 405, "GET, DELETE"},
		{"PUT to install", event("PUT", installRoute, ""), 405, "GET"},
		{"DELETE to install", event("DELETE", installRoute, ""), 405, "GET"},
		{"OPTIONS to the callback", event("OPTIONS", callbackRoute, ""), 405, "GET, DELETE"},
		{"unknown path", event("GET", "/oauth/other", ""), 404, ""},
		{"root", event("GET", "/", ""), 404, ""},
		{"path traversal", event("GET", "/oauth/../etc/passwd", ""), 404, ""},
		{"huge query string", event("GET", callbackRoute, "code="+strings.Repeat("a", maxQueryBytes)), 414, ""},
		{"huge query parameters only", func() events.APIGatewayV2HTTPRequest {
			ev := event("GET", callbackRoute, "")
			ev.QueryStringParameters = map[string]string{"code": strings.Repeat("a", maxQueryBytes)}
			return ev
		}(), 414, ""},
		{"bad percent escape", event("GET", callbackRoute, "code=%zz"), 400, ""},
		{"no code", event("GET", callbackRoute, "state=abc"), 400, ""},
		{"empty code", event("GET", callbackRoute, "code="), 400, ""},
		{"two codes", event("GET", callbackRoute, "code=aaaaaaaa&code=bbbbbbbb"), 400, ""},
		{"two states", event("GET", callbackRoute, "code=aaaaaaaa&state=x&state=y"), 400, ""},
		{"overlong code", event("GET", callbackRoute, "code="+strings.Repeat("a", 600)), 400, ""},
		{"script in code", event("GET", callbackRoute, "code=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state=%3Cb%3E"), 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.handle(tt.ev)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if resp.Headers["Allow"] != tt.allow {
				t.Errorf("Allow = %q, want %q", resp.Headers["Allow"], tt.allow)
			}
			if resp.Headers["Content-Type"] != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q, want text/html; charset=utf-8", resp.Headers["Content-Type"])
			}
			if strings.Contains(resp.Body, "<script>") {
				t.Errorf("body contains an unescaped script tag")
			}
		})
	}
	if n := e.tokenCalls(); n != 0 {
		t.Errorf("token calls for malformed requests = %d, want 0", n)
	}
}

func TestNamedStagePrefix(t *testing.T) {
	e := newEnv(t)
	ev := loadEvent(t, "install.json")
	ev.RawPath = "/prod/oauth/install"
	ev.RequestContext.Stage = "prod"
	if resp := e.handle(ev); resp.StatusCode != http.StatusFound {
		t.Errorf("GET /prod/oauth/install on stage prod = %d, want 302", resp.StatusCode)
	}
}

func TestInstallWithBrokenSecretAlerts(t *testing.T) {
	e := newEnv(t)
	e.putSecret(testenv.ClientID, testenv.ClientSecret, "short")
	resp := e.handle(loadEvent(t, "install.json"))
	wantPage(t, resp, http.StatusInternalServerError, "Something went wrong")
	if got := e.alertReasons(); !slices.Equal(got, []string{"credentials_unavailable"}) {
		t.Errorf("alerts = %v, want [credentials_unavailable]", got)
	}
}

// TestLogNeverContainsSecrets runs a full install, reload, failure and uninstall with a logger
// of its own and checks the output against every secret involved. TestMain repeats the check
// over the whole run's output.
func TestLogNeverContainsSecrets(t *testing.T) {
	e := newEnv(t)
	var own testenv.Buffer
	e.h.Log = slog.New(slog.NewJSONHandler(io.MultiWriter(&own, logSink), &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.h.Flow.Installer.Log = e.h.Log
	install := e.handle(loadEvent(t, "install.json"))
	back := e.authorize(install.Headers["Location"])
	secrets.AddWhole("state", back.Get("state"))
	e.handle(callbackEvent(t, back))
	e.handle(callbackEvent(t, back)) // reload
	e.inject(oauthFault(401, pdsim.MsgClientInvalid, pdsim.ErrCodeInvalidClient, 1))
	e.callback(e.issueCode(), e.issueState())
	in, err := e.installation()
	if err != nil {
		t.Fatalf("store.Get = %v", err)
	}
	if _, err := e.sim.Uninstall(t.Context(), e.gateway()+callbackRoute, pdsim.DefaultUserID); err != nil {
		t.Fatalf("sim.Uninstall = %v", err)
	}
	out := own.String()
	if !strings.Contains(out, `"company_id":3408256`) || !strings.Contains(out, `"reason":"client_invalid"`) {
		t.Fatalf("log lacks the expected events; got:\n%s", out)
	}
	mine := &testenv.Secrets{}
	mine.Add("access token", in.AccessToken)
	mine.Add("refresh token", in.RefreshToken)
	mine.Add("authorization code", back.Get("code"))
	mine.Add("state", back.Get("state"))
	mine.Add("client secret", testenv.ClientSecret)
	mine.Add("state key", testenv.StateKey)
	if mine.Len() != 6 {
		t.Fatalf("collected %d secrets, want 6", mine.Len())
	}
	if leaks := mine.FoundIn(out); len(leaks) > 0 {
		t.Errorf("log contains %v", leaks)
	}
	if leaks := secrets.FoundIn(logSink.String()); len(leaks) > 0 {
		t.Errorf("run log so far contains %v", leaks)
	}
}

// newCredentialSource reads the client credentials from the test's secret, as main.go does.
func newCredentialSource(cfg aws.Config, secretID string) *clientcreds.Source {
	return &clientcreds.Source{Client: secretsmanager.NewFromConfig(cfg), SecretID: secretID}
}

// newUsersClient is a users/me client for the simulator.
func newUsersClient(sim *pdsimtest.TestServer) *pdapi.Client {
	return &pdapi.Client{HTTP: sim.HTTP.Client()}
}

// putSecret replaces the test secret's value, as an operator rotating it would.
func (e *env) putSecret(id, secret, stateKey string) {
	e.t.Helper()
	secrets.Add("client secret", secret)
	b, err := json.Marshal(infra.ClientCredentials{ClientID: id, ClientSecret: secret, StateKey: stateKey})
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = secretsmanager.NewFromConfig(e.aws).PutSecretValue(e.t.Context(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(e.res.SecretID), SecretString: aws.String(string(b)),
	})
	if err != nil {
		e.t.Fatalf("PutSecretValue = %v", err)
	}
}

// TestRotatedSecretIsPickedUpAfterInvalidClient: a cached, stale client secret answered with
// "Invalid client" is dropped, so once the operator has fixed the secret the next install works
// without waiting for the cache to expire.
func TestRotatedSecretIsPickedUpAfterInvalidClient(t *testing.T) {
	e := newEnv(t)
	e.putSecret(testenv.ClientID, "stale-Vb4Nt9Rw2Jc6Gf3Ps8-0002", testenv.StateKey)
	resp := e.handle(callbackEvent(t, url.Values{"code": {e.issueCode()}}))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("callback with a stale secret = %d, want 500", resp.StatusCode)
	}
	e.putSecret(testenv.ClientID, testenv.ClientSecret, testenv.StateKey)
	resp = e.handle(callbackEvent(t, url.Values{"code": {e.issueCode()}}))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("callback after the secret was fixed = %d, want 200 (cache not invalidated?)", resp.StatusCode)
	}
}
