package callback

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/httpapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installpage"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
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

// The state cookie: __Host- makes browsers insist on Secure, Path=/ and no Domain, so no
// other site (not even a sibling subdomain) can set or read it. Lax: it is sent on the
// top-level redirect back from Pipedrive, not on cross-site subrequests.
const (
	stateCookie      = "__Host-pdkit_state"
	stateCookieAttrs = "; Path=/; Secure; HttpOnly; SameSite=Lax"
)

// config is the handler's behaviour, as values (the install flow's are install.Flow's).
type config struct {
	// SuccessURL is where a finished install is redirected; empty renders a success page.
	SuccessURL string
	// InstallPath is the link pages offer to restart an install; installRoute when empty.
	// Set it to a full URL when the API is served under a stage or another domain.
	InstallPath string
}

// handler serves the OAuth install redirect, the OAuth callback and Pipedrive's uninstall
// request for API Gateway HTTP API (payload format 2.0): it reads the request, runs the use
// case (install.Flow, uninstall.Uninstaller) and turns its typed result into a page or JSON.
// Flow and Uninstall are required. Safe for concurrent use.
type handler struct {
	Flow      *install.Flow
	Uninstall *uninstall.Uninstaller
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
			resp, err = renderPage(http.StatusInternalServerError, installpage.Error()), nil
		}
	}()
	var o outcome
	resp, o = h.route(ctx, req)
	h.logOutcome(ctx, req, resp.StatusCode, o)
	return resp, nil
}

// route dispatches by method and path.
func (h *handler) route(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, outcome) {
	path := httpapi.Path(req)
	method := req.RequestContext.HTTP.Method
	o := outcome{route: path}
	if method == "" {
		o.action, o.reason = "reject", "missing_method"
		return renderPage(http.StatusBadRequest, installpage.BadRequest()), o
	}
	var allow []string
	switch path {
	case installRoute:
		allow = []string{http.MethodGet}
	case callbackRoute:
		allow = []string{http.MethodGet, http.MethodDelete}
	default:
		o.action, o.reason = "reject", "not_found"
		return renderPage(http.StatusNotFound, installpage.NotFound()), o
	}
	if len(req.RawQueryString) > maxQueryBytes || httpapi.QueryParamsBytes(req.QueryStringParameters) > maxQueryBytes {
		o.action, o.reason = "reject", "query_too_long"
		return renderPage(http.StatusRequestURITooLong, installpage.URITooLong()), o
	}
	switch {
	case path == installRoute && method == http.MethodGet:
		return h.authorize(ctx, req, o)
	case path == callbackRoute && method == http.MethodGet:
		// Every answer clears the state cookie: a bound state is good for one callback.
		resp, o := h.callback(ctx, req, o)
		resp.Cookies = append(resp.Cookies, stateCookie+"="+stateCookieAttrs+"; Max-Age=0")
		return resp, o
	case path == callbackRoute && method == http.MethodDelete:
		return h.uninstall(ctx, req, o)
	}
	o.action, o.reason = "reject", "method_not_allowed"
	return methodNotAllowed(allow), o
}

// authorize answers GET /oauth/install: a redirect to Pipedrive's consent page with a fresh
// state, bound to this browser by a cookie only it holds.
func (h *handler) authorize(ctx context.Context, req events.APIGatewayV2HTTPRequest, o outcome) (events.APIGatewayV2HTTPResponse, outcome) {
	redirectURI, ok := h.redirectURI(req)
	if !ok {
		return h.unknownRedirectURI(ctx, o)
	}
	st := h.Flow.Begin(ctx, redirectURI)
	o.reason, o.err = st.Reason, st.Err
	switch st.Outcome {
	case install.Authorize:
		o.action = "redirect"
		r := redirect(st.URL)
		r.Cookies = []string{stateCookie + "=" + st.Binding + stateCookieAttrs + "; Max-Age=" + strconv.Itoa(int(st.TTL.Seconds()))}
		return r, o
	case install.NotConfigured:
		return h.notConfigured(o, st.Err, false)
	}
	o.action = "error" // ConfigError: a person was alerted
	return renderPage(http.StatusInternalServerError, installpage.Error()), o
}

// callback answers GET /oauth/callback: it checks the query, runs the install flow (state,
// caps, the install use case) and shows the page its result calls for.
func (h *handler) callback(ctx context.Context, req events.APIGatewayV2HTTPRequest, o outcome) (events.APIGatewayV2HTTPResponse, outcome) {
	restart := cmp.Or(h.Config.InstallPath, installRoute)
	q, ok := httpapi.Query(req)
	if !ok {
		o.action, o.reason = "reject", "malformed_query"
		return renderPage(http.StatusBadRequest, installpage.InvalidLink(restart)), o
	}
	if _, denied := q["error"]; denied {
		// The user clicked "deny" (error=user_denied) or Pipedrive refused the consent: no
		// token call. Only a known value is logged; the rest is attacker-controlled text.
		o.action, o.reason = "cancelled", "user_denied"
		if v := q.Get("error"); v != "user_denied" {
			o.reason = "authorize_error"
		}
		return renderPage(http.StatusOK, installpage.Cancelled(restart)), o
	}
	codes, states := q["code"], q["state"]
	if len(codes) != 1 || codes[0] == "" || len(codes[0]) > 512 || len(states) > 1 {
		o.action, o.reason = "reject", "missing_code"
		return renderPage(http.StatusBadRequest, installpage.InvalidLink(restart)), o
	}
	redirectURI, ok := h.redirectURI(req)
	if !ok {
		return h.unknownRedirectURI(ctx, o)
	}
	cb := install.Callback{Code: codes[0], HasState: len(states) == 1, Binding: httpapi.Cookie(req, stateCookie),
		SourceIP: req.RequestContext.HTTP.SourceIP, RedirectURI: redirectURI}
	if cb.HasState {
		cb.State = states[0]
	}
	r := h.Flow.Finish(ctx, cb)
	o.reason, o.id, o.pdState, o.err = r.Reason, r.ID, r.PipedriveStatus, r.Err
	switch r.Outcome {
	case install.Installed, install.AlreadyInstalled:
		o.action = "succeed"
		return h.success(), o
	case install.InProgress:
		o.action = "busy"
		return withHeader(renderPage(http.StatusServiceUnavailable, installpage.Busy()), "Retry-After", "3"), o
	case install.CodeExpired:
		o.action = "reject"
		return renderPage(http.StatusBadRequest, installpage.CodeExpired(restart)), o
	case install.Restart, install.InvalidState:
		o.action = "reject"
		return renderPage(http.StatusBadRequest, installpage.InvalidLink(restart)), o
	case install.NotInstallable:
		o.action = "reject"
		return renderPage(http.StatusForbidden, installpage.NotInstallable()), o
	case install.Outage:
		o.action = "retry"
		return withHeader(renderPage(http.StatusServiceUnavailable, installpage.PipedriveDown(restart)), "Retry-After", "30"), o
	case install.IdentityFailed:
		o.action = "error"
		return renderPage(http.StatusBadGateway, installpage.IdentityFailed(restart)), o
	case install.TooManyAttempts:
		o.action = "reject"
		return withHeader(renderPage(http.StatusTooManyRequests, installpage.TooManyAttempts(h.Flow.AttemptWindowOrDefault())), "Retry-After", strconv.Itoa(int(h.Flow.AttemptWindowOrDefault().Seconds()))), o
	case install.NotConfigured:
		return h.notConfigured(o, r.Err, false)
	}
	// ConfigError, Failed: a problem on our side (a person was alerted where one must act).
	o.action = "error"
	return renderPage(http.StatusInternalServerError, installpage.Error()), o
}

// success is the answer to a finished install.
func (h *handler) success() events.APIGatewayV2HTTPResponse {
	if h.Config.SuccessURL != "" {
		return redirect(h.Config.SuccessURL)
	}
	return renderPage(http.StatusOK, installpage.Success())
}

// redirectURI is the callback URL Pipedrive sends the user back to and the code exchange names:
// the configured one (REDIRECT_URI, the Installer's), else this route under the request's own
// base URL (httpapi.BaseURL: the domain API Gateway received it on). ok is false when neither
// is known.
func (h *handler) redirectURI(req events.APIGatewayV2HTTPRequest) (string, bool) {
	if h.Flow.Installer.RedirectURI != "" {
		return h.Flow.Installer.RedirectURI, true
	}
	base, ok := httpapi.BaseURL(req)
	return base + callbackRoute, ok
}

// notConfigured answers while the app's client id and secret are still the deploy's
// placeholders: a plain page (or JSON for the uninstall API), no alert, no error.
func (h *handler) notConfigured(o outcome, err error, json bool) (events.APIGatewayV2HTTPResponse, outcome) {
	o.action, o.reason, o.err = "not_configured", "client_credentials_placeholder", err
	if json {
		return jsonResponse(http.StatusServiceUnavailable, `{"success":false,"error":"not configured"}`), o
	}
	return renderPage(http.StatusServiceUnavailable, installpage.NotConfigured()), o
}

// unknownRedirectURI answers 500 and alerts: no REDIRECT_URI and no domain in the request
// (API Gateway always sends one), so the callback URL cannot be known.
func (h *handler) unknownRedirectURI(ctx context.Context, o outcome) (events.APIGatewayV2HTTPResponse, outcome) {
	o.action, o.reason = "error", "redirect_uri_unknown"
	h.Alerts.Notify(ctx, alerts.Alert{Reason: o.reason, Summary: "The callback URL is neither configured (REDIRECT_URI) nor known from the request's domain"})
	return renderPage(http.StatusInternalServerError, installpage.Error()), o
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
	attrs := []slog.Attr{slog.String("route", o.route), slog.String("method", req.RequestContext.HTTP.Method),
		slog.String("api_request_id", req.RequestContext.RequestID) /* the HTTP API access log's requestId */, slog.String("action", o.action), slog.String("reason", o.reason),
		slog.Int("status", status), slog.Int64("company_id", o.id.CompanyID), slog.Int64("user_id", o.id.UserID)}
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
	h.Metrics.Answer(status, o.reason)
}

func (h *handler) logger() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}
