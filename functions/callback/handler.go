package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oauthstate"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// The routes this function serves (API Gateway forwards exactly these).
const (
	InstallRoute  = "/oauth/install"
	CallbackRoute = "/oauth/callback"
)

// Request limits: the callback's query holds a code and a state (under 200 bytes) and the
// uninstall body four small fields, so anything near these limits is not Pipedrive.
const (
	MaxQueryBytes = 8 << 10
	MaxBodyBytes  = 8 << 10
)

// Credentials supplies the app's current client credentials; clientcreds' cached source
// satisfies it. It must be safe for concurrent use.
type Credentials interface {
	Get(ctx context.Context) (clientcreds.Credentials, error)
}

// OAuth is the part of Pipedrive's OAuth server the handler uses; *pdoauth.Client satisfies it.
// Errors carry a pderrors.Decision (pderrors.DecisionOf).
type OAuth interface {
	AuthorizeURL(ctx context.Context, redirectURI, state string) (string, error)
	Exchange(ctx context.Context, code, redirectURI string) (*pdoauth.Token, error)
}

// Users looks up who a fresh access token belongs to; *pdapi.Client satisfies it.
type Users interface {
	Me(ctx context.Context, apiDomain, accessToken string) (pdapi.Me, error)
}

// CodeClaims makes a single-use authorization code be exchanged once even when the callback
// arrives twice; *tokenstore.Store satisfies it. ClaimCode returns tokenstore.ErrCodeClaimed
// with the existing claim to every caller after the first.
type CodeClaims interface {
	ClaimCode(ctx context.Context, codeHash string, ttl time.Duration) (tokenstore.CodeClaim, error)
	CompleteCode(ctx context.Context, codeHash string, id tokenstore.InstallationID) error
	ReleaseCode(ctx context.Context, codeHash string) error
}

// Installations stores and removes installations; *tokenstore.Store satisfies it. Uninstall
// returns tokenstore.ErrNotFound for an installation never stored.
type Installations interface {
	Install(ctx context.Context, in tokenstore.Installation) (tokenstore.Installation, error)
	Uninstall(ctx context.Context, id tokenstore.InstallationID) (tokenstore.Installation, error)
}

// Jobs enqueues work for the apicall worker; *jobs.Enqueuer satisfies it.
type Jobs interface {
	Enqueue(ctx context.Context, j jobs.Job) error
}

// Alerter tells a person something needs them; *alerts.Publisher satisfies it.
type Alerter interface {
	Alert(ctx context.Context, a alerts.Alert) error
}

// RetryPolicy bounds the retries of a call to Pipedrive inside one callback request.
type RetryPolicy struct {
	// Attempts is the total number of tries, at least 1.
	Attempts int
	// Backoff is the wait after failed try n (1-based) before the next one. A server's
	// Retry-After, when larger, wins; a wait that does not fit the request's deadline ends
	// the retries instead.
	Backoff func(n int) time.Duration
}

// DefaultRetry tries three times, waiting 250 ms then 500 ms: a user is waiting on the page.
func DefaultRetry() RetryPolicy {
	return RetryPolicy{Attempts: 3, Backoff: func(n int) time.Duration { return 250 * time.Millisecond << (n - 1) }}
}

// Config is the handler's behaviour, as values.
type Config struct {
	// RedirectURI is the callback URL registered in Developer Hub; required.
	RedirectURI string
	// SuccessURL is where a finished install is redirected; empty renders a success page.
	SuccessURL string
	// RequireState rejects callbacks without a state. It is false by default because installs
	// started from the Pipedrive Marketplace may call back without a state this app issued;
	// turn it on only when every install starts at InstallRoute. A state that is present is
	// always verified.
	RequireState bool
	// InstallPath is the link pages offer to restart an install; "/oauth/install" when empty.
	// Set it to a full URL when the API is served under a stage or another domain.
	InstallPath string
	// StateTTL is how long an issued state is accepted; oauthstate.DefaultTTL when zero.
	StateTTL time.Duration
	// CodeClaimTTL is how long a code's claim is kept: a reload within it shows success
	// without a second exchange. DefaultCodeClaimTTL when zero.
	CodeClaimTTL time.Duration
	// ClaimWait bounds how long a callback waits for another request exchanging the same code
	// (DefaultClaimWait when zero); ClaimPoll is the interval (DefaultClaimPoll when zero).
	ClaimWait time.Duration
	ClaimPoll time.Duration
	// ExchangeRetry bounds retries of the token exchange and of users/me; DefaultRetry when
	// Attempts is zero.
	ExchangeRetry RetryPolicy
	// DeadlineReserve is kept free of retries before the request's deadline, for storing the
	// installation and answering; DefaultDeadlineReserve when zero.
	DeadlineReserve time.Duration
	// EnqueueOnInstall sends a register_webhooks job after each install (Handler.Jobs needed).
	EnqueueOnInstall bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Defaults for zero Config fields.
const (
	DefaultInstallPath     = InstallRoute
	DefaultCodeClaimTTL    = 30 * time.Minute
	DefaultClaimWait       = 3 * time.Second
	DefaultClaimPoll       = 150 * time.Millisecond
	DefaultDeadlineReserve = 2 * time.Second
)

// abandonedClaimAge is longer than any callback runs (the function's timeout is 15 s): an
// exchanging claim this old belongs to a request that died.
const abandonedClaimAge = time.Minute

// Handler serves the OAuth install redirect, the OAuth callback and Pipedrive's uninstall
// request for API Gateway HTTP API (payload format 2.0). Creds, OAuth, Users, Claims and
// Installations are required; Jobs, Alerts and Log are optional. Safe for concurrent use.
type Handler struct {
	// Creds gives the client id, secret and state key; read per request so a rotated secret
	// is picked up when the source's cache refreshes.
	Creds Credentials
	// OAuth builds the authorize URL and exchanges codes.
	OAuth OAuth
	// Users tells whom a fresh token belongs to (users/me).
	Users Users
	// Claims keeps one exchange per authorization code.
	Claims CodeClaims
	// Installations stores installs and uninstalls.
	Installations Installations
	// Jobs receives a register_webhooks job per install when Config.EnqueueOnInstall is set.
	Jobs Jobs
	// Alerts is told about configuration errors a person must fix; nil only logs them.
	Alerts Alerter
	// Log receives one JSON event per decision; nil discards.
	Log    *slog.Logger
	Config Config
}

// outcome is what the handler decided for one request, logged as one event.
type outcome struct {
	route   string
	action  string
	reason  string
	id      tokenstore.InstallationID
	pdState int // Pipedrive's status, 0 if none
	err     error
}

// Handle answers one API Gateway request. It never returns an error and never panics: every
// failure is a page (or, for the uninstall API, JSON) with a fitting status, and the detail
// goes to the log.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, err error) {
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
func (h *Handler) route(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, outcome) {
	path := h.path(req)
	method := req.RequestContext.HTTP.Method
	o := outcome{route: path}
	if method == "" {
		o.action, o.reason = "reject", "missing_method"
		return renderPage(http.StatusBadRequest, pageBadRequest()), o
	}
	var allow []string
	switch path {
	case InstallRoute:
		allow = []string{http.MethodGet}
	case CallbackRoute:
		allow = []string{http.MethodGet, http.MethodDelete}
	default:
		o.action, o.reason = "reject", "not_found"
		return renderPage(http.StatusNotFound, pageNotFound()), o
	}
	if len(req.RawQueryString) > MaxQueryBytes || queryParamsBytes(req.QueryStringParameters) > MaxQueryBytes {
		o.action, o.reason = "reject", "query_too_long"
		return renderPage(http.StatusRequestURITooLong, pageURITooLong()), o
	}
	switch {
	case path == InstallRoute && method == http.MethodGet:
		return h.install(ctx, o)
	case path == CallbackRoute && method == http.MethodGet:
		return h.callback(ctx, req, o)
	case path == CallbackRoute && method == http.MethodDelete:
		return h.uninstall(ctx, req, o)
	}
	o.action, o.reason = "reject", "method_not_allowed"
	return methodNotAllowed(allow), o
}

// path is the request path without a named stage's prefix ("/prod/oauth/callback").
func (h *Handler) path(req events.APIGatewayV2HTTPRequest) string {
	p := req.RawPath
	if p == "" {
		p = req.RequestContext.HTTP.Path
	}
	if st := req.RequestContext.Stage; st != "" && st != "$default" {
		p = strings.TrimPrefix(p, "/"+st)
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

// install answers GET /oauth/install: a redirect to Pipedrive's consent page with a fresh state.
func (h *Handler) install(ctx context.Context, o outcome) (events.APIGatewayV2HTTPResponse, outcome) {
	creds, err := h.Creds.Get(ctx)
	if err != nil {
		return h.configFailure(ctx, o, "credentials_unavailable", "The app's client credentials could not be loaded", err)
	}
	state, err := h.signer(creds).Issue()
	if err != nil {
		return h.configFailure(ctx, o, "state_key_invalid", "The state key in the client secret is missing or too short", err)
	}
	u, err := h.OAuth.AuthorizeURL(ctx, h.Config.RedirectURI, state)
	if err != nil {
		return h.configFailure(ctx, o, "authorize_url_failed", "The Pipedrive authorize URL could not be built", err)
	}
	o.action, o.reason = "redirect", "authorize"
	return redirect(u), o
}

// callback answers GET /oauth/callback.
func (h *Handler) callback(ctx context.Context, req events.APIGatewayV2HTTPRequest, o outcome) (events.APIGatewayV2HTTPResponse, outcome) {
	q, ok := query(req)
	if !ok {
		o.action, o.reason = "reject", "malformed_query"
		return renderPage(http.StatusBadRequest, pageInvalidLink(h.installPath())), o
	}
	if _, denied := q["error"]; denied {
		// The user clicked "deny" (error=user_denied) or Pipedrive refused the consent: no
		// token call. Only a known value is logged; the rest is attacker-controlled text.
		o.action, o.reason = "cancelled", "user_denied"
		if v := q.Get("error"); v != "user_denied" {
			o.reason = "authorize_error"
		}
		return renderPage(http.StatusOK, pageCancelled(h.installPath())), o
	}
	codes, states := q["code"], q["state"]
	if len(codes) != 1 || codes[0] == "" || len(codes[0]) > 512 || len(states) > 1 {
		o.action, o.reason = "reject", "missing_code"
		return renderPage(http.StatusBadRequest, pageInvalidLink(h.installPath())), o
	}
	code := codes[0]
	creds, err := h.Creds.Get(ctx)
	if err != nil {
		return h.configFailure(ctx, o, "credentials_unavailable", "The app's client credentials could not be loaded", err)
	}
	switch {
	case len(states) == 1:
		if err := h.signer(creds).Verify(states[0]); err != nil {
			if errors.Is(err, oauthstate.ErrWeakKey) {
				return h.configFailure(ctx, o, "state_key_invalid", "The state key in the client secret is missing or too short", err)
			}
			o.action, o.reason, o.err = "reject", stateReason(err), err
			return renderPage(http.StatusBadRequest, pageInvalidLink(h.installPath())), o
		}
	case h.Config.RequireState:
		o.action, o.reason = "reject", "state_missing"
		return renderPage(http.StatusBadRequest, pageInvalidLink(h.installPath())), o
	}

	hash := tokenstore.HashCode(code)
	resp, done, o := h.claim(ctx, hash, o)
	if done {
		return resp, o
	}
	resp, o, installed := h.exchange(ctx, code, hash, o)
	if !installed {
		// Let a retry of the same code (reload) work: only a completed claim is kept.
		dctx, cancel := detached(ctx)
		defer cancel()
		if err := h.Claims.ReleaseCode(dctx, hash); err != nil {
			h.logger().LogAttrs(ctx, slog.LevelWarn, "release code claim failed", slog.String("error", err.Error()))
		}
	}
	return resp, o
}

// claim claims the code. done is true when the answer is already decided: another request
// completed it (success), is still exchanging it after ClaimWait (busy), or the store failed.
func (h *Handler) claim(ctx context.Context, hash string, o outcome) (events.APIGatewayV2HTTPResponse, bool, outcome) {
	// Real time, not Config.Now: this bounds how long the user waits.
	deadline := time.Now().Add(h.claimWait())
	for {
		c, err := h.Claims.ClaimCode(ctx, hash, h.codeClaimTTL())
		switch {
		case err == nil:
			return events.APIGatewayV2HTTPResponse{}, false, o
		case !errors.Is(err, tokenstore.ErrCodeClaimed):
			o.action, o.reason, o.err = "error", "store_failed", err
			return renderPage(http.StatusInternalServerError, pageError()), true, o
		case c.State == tokenstore.CodeDone:
			// The user reloaded a finished callback: show success, do not exchange again.
			o.action, o.reason, o.id = "succeed", "code_already_used", c.ID
			return h.success(), true, o
		case !c.ClaimedAt.IsZero() && h.clock().Sub(c.ClaimedAt) > abandonedClaimAge:
			// No callback runs this long: the request that claimed the code died (timeout,
			// crash) and its claim outlives it for CodeClaimTTL. Waiting cannot help and the
			// code may be spent, so the user starts again.
			o.action, o.reason = "reject", "code_claim_abandoned"
			return renderPage(http.StatusBadRequest, pageInvalidLink(h.installPath())), true, o
		}
		// Another request is exchanging this code right now: wait for it, boundedly.
		if !time.Now().Before(deadline) || sleep(ctx, h.claimPoll()) != nil {
			o.action, o.reason = "busy", "code_exchanging"
			r := renderPage(http.StatusServiceUnavailable, pageBusy())
			r.Headers["Retry-After"] = "3"
			return r, true, o
		}
	}
}

// exchange trades the code for tokens, identifies the user, stores the installation and
// completes the claim. installed reports whether the installation was stored.
func (h *Handler) exchange(ctx context.Context, code, hash string, o outcome) (events.APIGatewayV2HTTPResponse, outcome, bool) {
	var tok *pdoauth.Token
	err := h.retry(ctx, func(ctx context.Context) error {
		var err error
		tok, err = h.OAuth.Exchange(ctx, code, h.Config.RedirectURI)
		return err
	})
	if err != nil {
		resp, o := h.exchangeFailure(ctx, o, err)
		return resp, o, false
	}
	if tok.APIDomain == "" {
		// Without api_domain there is nowhere to send API calls; Pipedrive always sends one.
		o.action, o.reason = "error", "missing_api_domain"
		h.alert(ctx, alerts.Alert{Reason: "missing_api_domain", Summary: "Pipedrive's token answer had no api_domain"})
		return renderPage(http.StatusBadGateway, pageIdentityFailed(h.installPath())), o, false
	}
	var me pdapi.Me
	err = h.retry(ctx, func(ctx context.Context) error {
		var err error
		me, err = h.Users.Me(ctx, tok.APIDomain, tok.AccessToken)
		return err
	})
	if err != nil {
		d := pderrors.DecisionOf(err)
		o.action, o.reason, o.pdState, o.err = "error", "users_me_failed", d.Status, err
		return renderPage(http.StatusBadGateway, pageIdentityFailed(h.installPath())), o, false
	}
	id := tokenstore.InstallationID{CompanyID: me.CompanyID, UserID: me.ID}
	o.id = id
	inst, err := h.Installations.Install(ctx, tokenstore.Installation{
		ID:           id,
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		APIDomain:    tok.APIDomain,
		Scopes:       tok.Scopes,
		ExpiresAt:    tok.ExpiresAt,
		CodeHash:     hash,
	})
	if err != nil {
		o.action, o.reason, o.err = "error", "store_failed", err
		h.alert(ctx, alerts.Alert{Reason: "install_store_failed", CompanyID: id.CompanyID, UserID: id.UserID,
			Summary: "An installation could not be stored after a successful token exchange", Detail: errorDetail(err)})
		return renderPage(http.StatusInternalServerError, pageError()), o, false
	}
	// The installation is stored: from here on the install has succeeded whatever else fails.
	if err := h.Claims.CompleteCode(ctx, hash, id); err != nil {
		h.logger().LogAttrs(ctx, slog.LevelWarn, "complete code claim failed", id.LogValue().Group()...)
	}
	if h.Config.EnqueueOnInstall && h.Jobs != nil {
		j := jobs.Job{
			// One job per install version: a reload enqueues nothing, a reinstall registers again.
			ID:        "register_webhooks:" + id.String() + ":v" + strconv.FormatInt(inst.Version, 10),
			Kind:      jobs.KindRegisterWebhooks,
			CompanyID: id.CompanyID,
			UserID:    id.UserID,
		}
		if err := h.Jobs.Enqueue(ctx, j); err != nil {
			h.logger().LogAttrs(ctx, slog.LevelError, "enqueue register_webhooks failed",
				slog.Int64("company_id", id.CompanyID), slog.Int64("user_id", id.UserID),
				slog.String("action", "enqueue"), slog.String("reason", "enqueue_failed"), slog.String("error", err.Error()))
			h.alert(ctx, alerts.Alert{Reason: "enqueue_failed", Severity: alerts.SeverityWarning, CompanyID: id.CompanyID, UserID: id.UserID,
				Summary: "Webhook registration could not be queued for a new installation", Detail: errorDetail(err)})
		}
	}
	o.action, o.reason = "succeed", "installed"
	return h.success(), o, true
}

// exchangeFailure turns a failed exchange into the page its reason calls for.
func (h *Handler) exchangeFailure(ctx context.Context, o outcome, err error) (events.APIGatewayV2HTTPResponse, outcome) {
	d := pderrors.DecisionOf(err)
	o.action, o.reason, o.pdState, o.err = d.Action.String(), string(d.Reason), d.Status, err
	switch {
	case d.Reason == pderrors.ReasonAuthCodeExpired:
		return renderPage(http.StatusBadRequest, pageCodeExpired(h.installPath())), o
	case d.Reason == pderrors.ReasonAuthCodeInvalid || d.Reason == pderrors.ReasonInvalidGrant:
		// The code is unknown or used and no completed claim says it was ours (we hold the
		// claim): the user must start again. Not a configuration problem, so no alert.
		return renderPage(http.StatusBadRequest, pageInvalidLink(h.installPath())), o
	case d.Reason == pderrors.ReasonAppNotInstallable:
		return renderPage(http.StatusForbidden, pageNotInstallable()), o
	case d.Action == pderrors.Retry:
		if d.Alert {
			h.alertDecision(ctx, d)
		}
		r := renderPage(http.StatusServiceUnavailable, pagePipedriveDown(h.installPath()))
		r.Headers["Retry-After"] = "30"
		return r, o
	}
	// Client, redirect_uri, content type, grant type and unknown errors: our configuration or
	// our bug. A person must act; the user sees a neutral page.
	if d.Reason == pderrors.ReasonClientInvalid || d.Reason == pderrors.ReasonClientCredentialsMissing {
		// Why: the operator may have just rotated the secret; the next request re-reads it
		// instead of failing with the cached one until the cache expires.
		if inv, ok := h.Creds.(interface{ Invalidate() }); ok {
			inv.Invalidate()
		}
	}
	h.alertDecision(ctx, d)
	return renderPage(http.StatusInternalServerError, pageError()), o
}

// retry runs f up to Attempts times while its error is a pderrors Retry decision and the wait
// fits in the request's deadline. f gets a context that ends DeadlineReserve before the
// request's deadline: an attempt that runs to its HTTP client's timeout (5 s) must not eat the
// time left for storing and answering, or outlive the function (15 s) altogether.
func (h *Handler) retry(ctx context.Context, f func(ctx context.Context) error) error {
	p := h.Config.ExchangeRetry
	if p.Attempts <= 0 {
		p = DefaultRetry()
	}
	actx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		actx, cancel = context.WithDeadline(ctx, dl.Add(-h.deadlineReserve()))
		defer cancel()
	}
	var err error
	for n := 1; ; n++ {
		if err = f(actx); err == nil {
			return nil
		}
		d := pderrors.DecisionOf(err)
		if d.Action != pderrors.Retry || d.Reason == pderrors.ReasonCanceled || n >= p.Attempts || ctx.Err() != nil {
			return err
		}
		var wait time.Duration
		if p.Backoff != nil {
			wait = p.Backoff(n)
		}
		wait = max(wait, d.RetryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl)-h.deadlineReserve() < wait {
			return err
		}
		if sleep(ctx, wait) != nil {
			return err
		}
	}
}

// uninstall answers Pipedrive's DELETE /oauth/callback.
func (h *Handler) uninstall(ctx context.Context, req events.APIGatewayV2HTTPRequest, o outcome) (events.APIGatewayV2HTTPResponse, outcome) {
	if len(req.Body) > base64.StdEncoding.EncodedLen(MaxBodyBytes) {
		o.action, o.reason = "reject", "body_too_large"
		return jsonResponse(http.StatusRequestEntityTooLarge, `{"success":false,"error":"request body too large"}`), o
	}
	creds, err := h.Creds.Get(ctx)
	if err != nil {
		h.alert(ctx, alerts.Alert{Reason: "credentials_unavailable", Summary: "The app's client credentials could not be loaded", Detail: errorDetail(err)})
		o.action, o.reason, o.err = "error", "credentials_unavailable", err
		return jsonResponse(http.StatusInternalServerError, `{"success":false,"error":"internal error"}`), o
	}
	user, pass, _ := basicCredentials(header(req.Headers, "Authorization"))
	// Compare even when the header is absent so timing tells nothing.
	if !credentialsMatch(user, pass, creds.ClientID, creds.ClientSecret) {
		o.action, o.reason = "reject", "unauthorized"
		r := jsonResponse(http.StatusUnauthorized, `{"success":false,"error":"unauthorized"}`)
		r.Headers["WWW-Authenticate"] = `Basic realm="uninstall"`
		return r, o
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			o.action, o.reason = "reject", "malformed_body"
			return jsonResponse(http.StatusBadRequest, `{"success":false,"error":"body is not valid base64"}`), o
		}
	}
	if len(body) > MaxBodyBytes {
		o.action, o.reason = "reject", "body_too_large"
		return jsonResponse(http.StatusRequestEntityTooLarge, `{"success":false,"error":"request body too large"}`), o
	}
	u, err := parseUninstall(body)
	if err != nil {
		o.action, o.reason, o.err = "reject", "malformed_body", err
		return jsonResponse(http.StatusBadRequest, `{"success":false,"error":"malformed uninstall request"}`), o
	}
	o.id = tokenstore.InstallationID{CompanyID: u.CompanyID, UserID: u.UserID}
	if u.ClientID != "" && !constantTimeEqual(u.ClientID, creds.ClientID) {
		o.action, o.reason = "reject", "client_id_mismatch"
		return jsonResponse(http.StatusBadRequest, `{"success":false,"error":"client_id does not match"}`), o
	}
	if !u.TimestampValid {
		// Accepted anyway: the timestamp's format is unconfirmed (see parseUninstall).
		h.logger().LogAttrs(ctx, slog.LevelInfo, "uninstall without a readable timestamp",
			slog.Int64("company_id", u.CompanyID), slog.Int64("user_id", u.UserID))
	}
	if _, err := h.Installations.Uninstall(ctx, o.id); err != nil {
		if errors.Is(err, tokenstore.ErrNotFound) {
			// Never installed here (or another environment's user): nothing to do, and
			// answering success keeps the request idempotent.
			o.action, o.reason = "uninstall", "unknown_installation"
			return jsonResponse(http.StatusOK, `{"success":true}`), o
		}
		o.action, o.reason, o.err = "error", "store_failed", err
		return jsonResponse(http.StatusInternalServerError, `{"success":false,"error":"internal error"}`), o
	}
	o.action, o.reason = "uninstall", "uninstalled"
	return jsonResponse(http.StatusOK, `{"success":true}`), o
}

// success is the answer to a finished install.
func (h *Handler) success() events.APIGatewayV2HTTPResponse {
	if h.Config.SuccessURL != "" {
		return redirect(h.Config.SuccessURL)
	}
	return renderPage(http.StatusOK, pageSuccess())
}

// configFailure answers 500 for a problem a person must fix, and alerts.
func (h *Handler) configFailure(ctx context.Context, o outcome, reason, summary string, err error) (events.APIGatewayV2HTTPResponse, outcome) {
	o.action, o.reason, o.err = "error", reason, err
	h.alert(ctx, alerts.Alert{Reason: reason, Summary: summary, Detail: errorDetail(err)})
	return renderPage(http.StatusInternalServerError, pageError()), o
}

// alertDecision alerts about a token-exchange decision.
func (h *Handler) alertDecision(ctx context.Context, d pderrors.Decision) {
	summary := "Pipedrive rejected the OAuth token exchange (" + string(d.Reason) + ")"
	if d.Action == pderrors.Retry {
		summary = "Pipedrive's OAuth server kept failing during installs (" + string(d.Reason) + ")"
	}
	detail := d.Message
	if d.Status != 0 {
		detail = "HTTP " + strconv.Itoa(d.Status) + ": " + d.Message
	}
	h.alert(ctx, alerts.Alert{Reason: string(d.Reason), Summary: summary, Detail: detail})
}

// alert publishes a, logging instead when no Alerter is set or publishing fails. It does not
// wait on the request's cancellation: a user closing the tab must not lose the alert.
func (h *Handler) alert(ctx context.Context, a alerts.Alert) {
	attrs := []slog.Attr{slog.String("action", "alert"), slog.String("reason", a.Reason),
		slog.Int64("company_id", a.CompanyID), slog.Int64("user_id", a.UserID)}
	if h.Alerts == nil {
		h.logger().LogAttrs(ctx, slog.LevelError, "alert (no publisher configured)", attrs...)
		return
	}
	dctx, cancel := detached(ctx)
	defer cancel()
	if err := h.Alerts.Alert(dctx, a); err != nil {
		h.logger().LogAttrs(ctx, slog.LevelError, "alert publish failed", append(attrs, slog.String("error", err.Error()))...)
	}
}

// logOutcome writes the one event per request.
func (h *Handler) logOutcome(ctx context.Context, req events.APIGatewayV2HTTPRequest, status int, o outcome) {
	level := slog.LevelInfo
	switch {
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
}

func (h *Handler) logger() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

func (h *Handler) signer(c clientcreds.Credentials) *oauthstate.Signer {
	return &oauthstate.Signer{Key: []byte(c.StateKey), TTL: h.Config.StateTTL, Now: h.Config.Now}
}

// clock is Config.Now, or time.Now when nil.
func (h *Handler) clock() time.Time {
	if h.Config.Now != nil {
		return h.Config.Now()
	}
	return time.Now()
}

func (h *Handler) installPath() string {
	if h.Config.InstallPath != "" {
		return h.Config.InstallPath
	}
	return DefaultInstallPath
}

func (h *Handler) codeClaimTTL() time.Duration {
	if h.Config.CodeClaimTTL > 0 {
		return h.Config.CodeClaimTTL
	}
	return DefaultCodeClaimTTL
}

func (h *Handler) claimWait() time.Duration {
	if h.Config.ClaimWait > 0 {
		return h.Config.ClaimWait
	}
	return DefaultClaimWait
}

func (h *Handler) claimPoll() time.Duration {
	if h.Config.ClaimPoll > 0 {
		return h.Config.ClaimPoll
	}
	return DefaultClaimPoll
}

func (h *Handler) deadlineReserve() time.Duration {
	if h.Config.DeadlineReserve > 0 {
		return h.Config.DeadlineReserve
	}
	return DefaultDeadlineReserve
}

// stateReason names a state verification failure for the log.
func stateReason(err error) string {
	switch {
	case errors.Is(err, oauthstate.ErrStateExpired):
		return "state_expired"
	case errors.Is(err, oauthstate.ErrStateForged):
		return "state_forged"
	}
	return "state_malformed"
}

// query parses the request's query, from rawQueryString when present (it keeps repeated keys
// apart), else from queryStringParameters.
func query(req events.APIGatewayV2HTTPRequest) (url.Values, bool) {
	if req.RawQueryString != "" {
		q, err := url.ParseQuery(req.RawQueryString)
		return q, err == nil
	}
	q := url.Values{}
	for k, v := range req.QueryStringParameters {
		q.Set(k, v)
	}
	return q, true
}

func queryParamsBytes(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v) + 2
	}
	return n
}

// header returns the value of header name, matched case-insensitively (HTTP API lower-cases
// header names, literal test events may not).
func header(h map[string]string, name string) string {
	if v, ok := h[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// errorDetail is the text of an error from this project's packages, safe to publish, cut short.
func errorDetail(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// detachedTimeout bounds clean-up calls (releasing a claim, publishing an alert) that must run
// even when the request's context is done, but must not outlive the function either.
const detachedTimeout = 2 * time.Second

// detached returns a context that survives ctx's cancellation, bounded by detachedTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), detachedTimeout)
}
