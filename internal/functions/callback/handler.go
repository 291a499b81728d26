package callback

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oauthstate"
	"github.com/pdkit/pipedrive-lambda-kit/internal/uninstall"
)

// The routes this function serves (API Gateway forwards exactly these).
const (
	installRoute  = "/oauth/install"
	callbackRoute = "/oauth/callback"
)

// maxQueryBytes: the callback's query holds a code and a state (under 200 bytes), so anything
// near this limit is not Pipedrive.
const maxQueryBytes = 8 << 10

// credentials supplies the app's current client credentials; clientcreds' cached source
// satisfies it. It must be safe for concurrent use.
type credentials interface {
	Get(ctx context.Context) (clientcreds.Credentials, error)
	// Invalidate makes the next Get read the secret again (it may just have been rotated).
	Invalidate()
}

// authorizer builds Pipedrive's consent URL; *pdoauth.Client satisfies it.
type authorizer interface {
	AuthorizeURL(ctx context.Context, redirectURI, state string) (string, error)
}

// attempts caps costly work per source; *tokenstore.Store satisfies it. CountAttempt counts
// one attempt under name in the current window and reports whether it is within limit.
type attempts interface {
	CountAttempt(ctx context.Context, name string, limit int, window time.Duration) (bool, error)
}

// The state cookie: __Host- makes browsers insist on Secure, Path=/ and no Domain, so no
// other site (not even a sibling subdomain) can set or read it. Lax: it is sent on the
// top-level redirect back from Pipedrive, not on cross-site subrequests.
const (
	stateCookie      = "__Host-pdkit_state"
	stateCookieAttrs = "; Path=/; Secure; HttpOnly; SameSite=Lax"
)

// Default caps on token-endpoint calls (see config).
const (
	defaultAttemptWindow   = 10 * time.Minute
	defaultAttemptsPerIP   = 30
	defaultAttemptsPerFlow = 5
)

// config is the handler's behaviour, as values.
type config struct {
	// SuccessURL is where a finished install is redirected; empty renders a success page.
	SuccessURL string
	// RequireState rejects callbacks without a state, and callbacks whose state installRoute
	// bound to a browser (a cookie) arriving without that browser's cookie. It is false by
	// default because installs started from the Pipedrive Marketplace may call back without a
	// state this app issued; turn it on only when every install starts at installRoute. A
	// state that is present is always verified; with RequireState off, a state presented by
	// another browser counts as no state (logged as state_unbound) since stripping the state
	// would get the same result.
	RequireState bool
	// InstallPath is the link pages offer to restart an install; installRoute when empty.
	// Set it to a full URL when the API is served under a stage or another domain.
	InstallPath string
	// StateTTL is how long an issued state is accepted; oauthstate.DefaultTTL when zero.
	StateTTL time.Duration
	// Now is the clock for states; time.Now when nil.
	Now func() time.Time
	// AttemptWindow, AttemptsPerIP and AttemptsPerState cap the callbacks that may reach the
	// token endpoint: per client IP and per state, in fixed windows of AttemptWindow. Defaults
	// (zero): 10 minutes, 30 per IP, 5 per state. A real user needs one, a reload or two more.
	AttemptWindow    time.Duration
	AttemptsPerIP    int
	AttemptsPerState int
}

// handler serves the OAuth install redirect, the OAuth callback and Pipedrive's uninstall
// request for API Gateway HTTP API (payload format 2.0). The callback's work is the install
// use case (Installer); the handler checks the request and turns the result into a page.
// Creds, OAuth, Installer and Installations are required. Safe for concurrent use.
type handler struct {
	// Creds gives the client id, secret and state key; read per request so a rotated secret
	// is picked up when the source's cache refreshes.
	Creds credentials
	// OAuth builds the authorize URL, for Installer.RedirectURI.
	OAuth authorizer
	// Installer exchanges codes and stores installations.
	Installer *install.Installer
	// Uninstall is the uninstall use case (DELETE on the callback route).
	Uninstall *uninstall.Uninstaller
	// Attempts counts callbacks per source before the token endpoint is called; nil does not
	// cap them (tests). main.go always sets it.
	Attempts attempts
	// Alerts is told about configuration errors a person must fix (publish-or-log).
	Alerts alerts.Notifier
	// Log receives one JSON event per request; nil discards.
	Log *slog.Logger
	// Metrics counts OAuthRequests by outcome and reason (EMF); nil writes none.
	Metrics *metrics.Emitter
	Config  config
}

// outcome is what the handler decided for one request, logged as one event.
type outcome struct {
	route   string
	action  string
	reason  string
	id      installation.ID
	pdState int // Pipedrive's status, 0 if none
	err     error
}

// Handle answers one API Gateway request. It never returns an error and never panics: every
// failure is a page (or, for the uninstall API, JSON) with a fitting status, and the detail
// goes to the log.
func (h *handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			// Why: a panic would surface as API Gateway's bare 502; log it and answer cleanly.
			h.logger().LogAttrs(ctx, slog.LevelError, "callback panic",
				slog.String("action", "error"), slog.String("reason", "panic"),
				slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
			resp, err = renderPage(http.StatusInternalServerError, pageError()), nil
		}
	}()
	var o outcome
	resp, o = h.route(ctx, req)
	h.logOutcome(ctx, req, resp.StatusCode, o)
	return resp, nil
}

// route dispatches by method and path.
func (h *handler) route(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, outcome) {
	path := requestPath(req)
	method := req.RequestContext.HTTP.Method
	o := outcome{route: path}
	if method == "" {
		o.action, o.reason = "reject", "missing_method"
		return renderPage(http.StatusBadRequest, pageBadRequest()), o
	}
	var allow []string
	switch path {
	case installRoute:
		allow = []string{http.MethodGet}
	case callbackRoute:
		allow = []string{http.MethodGet, http.MethodDelete}
	default:
		o.action, o.reason = "reject", "not_found"
		return renderPage(http.StatusNotFound, pageNotFound()), o
	}
	if len(req.RawQueryString) > maxQueryBytes || queryParamsBytes(req.QueryStringParameters) > maxQueryBytes {
		o.action, o.reason = "reject", "query_too_long"
		return renderPage(http.StatusRequestURITooLong, pageURITooLong()), o
	}
	switch {
	case path == installRoute && method == http.MethodGet:
		return h.authorize(ctx, req, o)
	case path == callbackRoute && method == http.MethodGet:
		return h.callback(ctx, req, o)
	case path == callbackRoute && method == http.MethodDelete:
		return h.uninstall(ctx, req, o)
	}
	o.action, o.reason = "reject", "method_not_allowed"
	return methodNotAllowed(allow), o
}

// authorize answers GET /oauth/install: a redirect to Pipedrive's consent page with a fresh state.
func (h *handler) authorize(ctx context.Context, req events.APIGatewayV2HTTPRequest, o outcome) (events.APIGatewayV2HTTPResponse, outcome) {
	creds, err := h.Creds.Get(ctx)
	if err != nil {
		return h.configFailure(ctx, o, "credentials_unavailable", "The app's client credentials could not be loaded", err)
	}
	redirectURI, ok := h.redirectURI(req)
	if !ok {
		return h.configFailure(ctx, o, "redirect_uri_unknown", "The callback URL is neither configured (REDIRECT_URI) nor known from the request's domain", nil)
	}
	// The state is bound to this browser: the binding goes in a cookie only it holds.
	state, binding, err := h.signer(creds).IssueBound()
	if err != nil {
		return h.configFailure(ctx, o, "state_key_invalid", "The state key in the client secret is missing or too short", err)
	}
	u, err := h.OAuth.AuthorizeURL(ctx, redirectURI, state)
	if err != nil {
		return h.configFailure(ctx, o, "authorize_url_failed", "The Pipedrive authorize URL could not be built", err)
	}
	o.action, o.reason = "redirect", "authorize"
	r := redirect(u)
	r.Cookies = []string{stateCookie + "=" + binding + stateCookieAttrs + "; Max-Age=" + strconv.Itoa(int(h.stateTTL().Seconds()))}
	return r, o
}

// callback answers GET /oauth/callback: it checks the query and the state, caps the attempts
// per source, runs the install use case on the code and shows the page its result calls for.
// Every answer clears the state cookie: a bound state is good for one callback.
func (h *handler) callback(ctx context.Context, req events.APIGatewayV2HTTPRequest, o outcome) (events.APIGatewayV2HTTPResponse, outcome) {
	resp, o := h.callbackAnswer(ctx, req, o)
	resp.Cookies = append(resp.Cookies, stateCookie+"="+stateCookieAttrs+"; Max-Age=0")
	return resp, o
}

func (h *handler) callbackAnswer(ctx context.Context, req events.APIGatewayV2HTTPRequest, o outcome) (events.APIGatewayV2HTTPResponse, outcome) {
	restart := h.installPath()
	q, ok := query(req)
	if !ok {
		o.action, o.reason = "reject", "malformed_query"
		return renderPage(http.StatusBadRequest, pageInvalidLink(restart)), o
	}
	if _, denied := q["error"]; denied {
		// The user clicked "deny" (error=user_denied) or Pipedrive refused the consent: no
		// token call. Only a known value is logged; the rest is attacker-controlled text.
		o.action, o.reason = "cancelled", "user_denied"
		if v := q.Get("error"); v != "user_denied" {
			o.reason = "authorize_error"
		}
		return renderPage(http.StatusOK, pageCancelled(restart)), o
	}
	codes, states := q["code"], q["state"]
	if len(codes) != 1 || codes[0] == "" || len(codes[0]) > 512 || len(states) > 1 {
		o.action, o.reason = "reject", "missing_code"
		return renderPage(http.StatusBadRequest, pageInvalidLink(restart)), o
	}
	creds, err := h.Creds.Get(ctx)
	if err != nil {
		return h.configFailure(ctx, o, "credentials_unavailable", "The app's client credentials could not be loaded", err)
	}
	switch {
	case len(states) == 1:
		err := h.signer(creds).VerifyBound(states[0], cookieValue(req, stateCookie))
		switch {
		case err == nil:
		case errors.Is(err, oauthstate.ErrWeakKey):
			return h.configFailure(ctx, o, "state_key_invalid", "The state key in the client secret is missing or too short", err)
		case errors.Is(err, oauthstate.ErrStateUnbound) && !h.Config.RequireState:
			// Another browser's state (or this one's, cookie lost) is worth no more than no
			// state, which is accepted in this mode: go on, but say so.
			h.logger().LogAttrs(ctx, slog.LevelWarn, "oauth state not bound to this browser",
				slog.String("action", "continue"), slog.String("reason", "state_unbound"))
		default:
			o.action, o.reason, o.err = "reject", stateReason(err), err
			return renderPage(http.StatusBadRequest, pageInvalidLink(restart)), o
		}
	case h.Config.RequireState:
		o.action, o.reason = "reject", "state_missing"
		return renderPage(http.StatusBadRequest, pageInvalidLink(restart)), o
	}
	if reason, ok := h.allowAttempt(ctx, req, states); !ok {
		o.action, o.reason = "reject", reason
		return withHeader(renderPage(http.StatusTooManyRequests, pageTooManyAttempts()), "Retry-After", strconv.Itoa(int(h.attemptWindow().Seconds()))), o
	}

	redirectURI, ok := h.redirectURI(req)
	if !ok {
		return h.configFailure(ctx, o, "redirect_uri_unknown", "The callback URL is neither configured (REDIRECT_URI) nor known from the request's domain", nil)
	}
	in := h.Installer
	if in.RedirectURI != redirectURI {
		// Derived from this request's domain: the exchange must name the URL the user came back to.
		cp := *in
		cp.RedirectURI = redirectURI
		in = &cp
	}
	r := in.Install(ctx, codes[0])
	o.reason, o.id, o.pdState, o.err = r.Reason, r.ID, r.PipedriveStatus, r.Err
	switch r.Outcome {
	case install.Installed, install.AlreadyInstalled:
		o.action = "succeed"
		return h.success(), o
	case install.InProgress:
		o.action = "busy"
		return withHeader(renderPage(http.StatusServiceUnavailable, pageBusy()), "Retry-After", "3"), o
	case install.CodeExpired:
		o.action = "reject"
		return renderPage(http.StatusBadRequest, pageCodeExpired(restart)), o
	case install.Restart:
		o.action = "reject"
		return renderPage(http.StatusBadRequest, pageInvalidLink(restart)), o
	case install.NotInstallable:
		o.action = "reject"
		return renderPage(http.StatusForbidden, pageNotInstallable()), o
	case install.Outage:
		o.action = "retry"
		return withHeader(renderPage(http.StatusServiceUnavailable, pagePipedriveDown(restart)), "Retry-After", "30"), o
	case install.IdentityFailed:
		o.action = "error"
		return renderPage(http.StatusBadGateway, pageIdentityFailed(restart)), o
	}
	// ConfigError, Failed: a problem on our side (a person was alerted where one must act).
	o.action = "error"
	return renderPage(http.StatusInternalServerError, pageError()), o
}

// success is the answer to a finished install.
func (h *handler) success() events.APIGatewayV2HTTPResponse {
	if h.Config.SuccessURL != "" {
		return redirect(h.Config.SuccessURL)
	}
	return renderPage(http.StatusOK, pageSuccess())
}

// redirectURI is the callback URL Pipedrive sends the user back to and the code exchange names:
// the configured one (REDIRECT_URI, the Installer's), else this route on the domain API Gateway
// received the request on (its requestContext.domainName: the API's own or a custom domain,
// never a client's Host header) under the request's named stage, if any. ok is false when
// neither is known.
func (h *handler) redirectURI(req events.APIGatewayV2HTTPRequest) (string, bool) {
	if h.Installer.RedirectURI != "" {
		return h.Installer.RedirectURI, true
	}
	d := req.RequestContext.DomainName
	if d == "" || strings.ContainsAny(d, "/\\?#@ ") {
		return "", false
	}
	prefix := ""
	if st := req.RequestContext.Stage; st != "" && st != "$default" {
		prefix = "/" + st // a named stage is part of the URL (requestPath strips it)
	}
	return "https://" + d + prefix + callbackRoute, true
}

// notConfigured answers while the app's client id and secret are still the deploy's
// placeholders: a plain page (or JSON for the uninstall API), no alert, no error.
func (h *handler) notConfigured(o outcome, err error, json bool) (events.APIGatewayV2HTTPResponse, outcome) {
	o.action, o.reason, o.err = "not_configured", "client_credentials_placeholder", err
	if json {
		return jsonResponse(http.StatusServiceUnavailable, `{"success":false,"error":"not configured"}`), o
	}
	return renderPage(http.StatusServiceUnavailable, pageNotConfigured()), o
}

// configFailure answers 500 for a problem a person must fix, and alerts. Credentials still the
// deploy's placeholders are not a failure: the answer says "not configured".
func (h *handler) configFailure(ctx context.Context, o outcome, reason, summary string, err error) (events.APIGatewayV2HTTPResponse, outcome) {
	if errors.Is(err, clientcreds.ErrNotConfigured) {
		return h.notConfigured(o, err, false)
	}
	o.action, o.reason, o.err = "error", reason, err
	h.Alerts.Notify(ctx, alerts.Alert{Reason: reason, Summary: summary, Detail: alerts.ErrorDetail(err)})
	return renderPage(http.StatusInternalServerError, pageError()), o
}

// logOutcome writes the one event per request.
func (h *handler) logOutcome(ctx context.Context, req events.APIGatewayV2HTTPRequest, status int, o outcome) {
	level := slog.LevelInfo
	switch {
	case o.action == "not_configured":
		level = slog.LevelWarn // expected until the operator sets the credentials
	case status >= 500:
		level = slog.LevelError
	case status >= 400:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("route", o.route),
		slog.String("method", req.RequestContext.HTTP.Method),
		slog.String("request_id", req.RequestContext.RequestID),
		slog.String("action", o.action),
		slog.String("reason", o.reason),
		slog.Int("status", status),
		slog.Int64("company_id", o.id.CompanyID),
		slog.Int64("user_id", o.id.UserID),
	}
	if o.pdState != 0 {
		attrs = append(attrs, slog.Int("pipedrive_status", o.pdState))
	}
	if o.err != nil {
		// Errors from this project's packages never contain tokens, codes or bodies
		// (pderrors.Error leaves the cause out; oauthstate never echoes the state).
		attrs = append(attrs, slog.String("error", o.err.Error()))
	}
	h.logger().LogAttrs(ctx, level, "oauth "+o.action, attrs...)
	h.Metrics.Count(metrics.OAuthRequests, metrics.Outcome(o.action), metrics.Reason(o.reason))
}

func (h *handler) logger() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// allowAttempt counts this callback against the caps per client IP and per state; reason
// names the cap that refused it. A counter that cannot be written lets the callback through
// (logged): the caps protect Pipedrive's token endpoint from floods, and an outage of the
// counter must not stop real installs.
func (h *handler) allowAttempt(ctx context.Context, req events.APIGatewayV2HTTPRequest, states []string) (reason string, ok bool) {
	if h.Attempts == nil {
		return "", true
	}
	type limitKey struct {
		reason, name string
		limit        int
	}
	keys := []limitKey{}
	if ip := req.RequestContext.HTTP.SourceIP; ip != "" {
		keys = append(keys, limitKey{"too_many_attempts_ip", "callback#ip#" + ip, cmp.Or(h.Config.AttemptsPerIP, defaultAttemptsPerIP)})
	}
	if len(states) == 1 {
		// The state's hash: the key never holds the state itself.
		sum := sha256.Sum256([]byte(states[0]))
		keys = append(keys, limitKey{"too_many_attempts_state", "callback#state#" + hex.EncodeToString(sum[:16]), cmp.Or(h.Config.AttemptsPerState, defaultAttemptsPerFlow)})
	}
	for _, k := range keys {
		allowed, err := h.Attempts.CountAttempt(ctx, k.name, k.limit, h.attemptWindow())
		if err != nil {
			h.logger().LogAttrs(ctx, slog.LevelWarn, "attempt counter failed; not capping",
				slog.String("action", "continue"), slog.String("reason", "attempt_count_failed"), slog.String("error", err.Error()))
			continue
		}
		if !allowed {
			return k.reason, false
		}
	}
	return "", true
}

func (h *handler) attemptWindow() time.Duration {
	return cmp.Or(h.Config.AttemptWindow, defaultAttemptWindow)
}

func (h *handler) stateTTL() time.Duration {
	return cmp.Or(h.Config.StateTTL, oauthstate.DefaultTTL)
}

func (h *handler) signer(c clientcreds.Credentials) *oauthstate.Signer {
	return &oauthstate.Signer{Key: []byte(c.StateKey), TTL: h.Config.StateTTL, Now: h.Config.Now}
}

func (h *handler) installPath() string {
	if h.Config.InstallPath != "" {
		return h.Config.InstallPath
	}
	return installRoute
}
