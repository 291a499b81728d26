// Package install is the install use case: it turns the authorization code of an OAuth
// callback into a stored installation. One code is exchanged once, however often the callback
// arrives: the code is claimed (tokenstore's work-claim protocol, keyed by the code's hash),
// exchanged with bounded retries that leave a reserve before the request's deadline, the
// user identified with users/me, the installation stored, the claim completed and a
// register_webhooks job queued. The Result says what happened, for the caller to answer (the
// callback function maps it to a page) and to log. Nothing here knows HTTP requests or Lambda.
package install

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/deadline"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// Exchanger trades an authorization code for tokens and revokes tokens it could not keep;
// *pdoauth.Client satisfies it. Errors carry a pderrors.Decision (pderrors.DecisionOf).
type Exchanger interface {
	Exchange(ctx context.Context, code, redirectURI string) (*pdoauth.Token, error)
	// Revoke revokes token at Pipedrive; hint is "refresh_token" or "access_token".
	Revoke(ctx context.Context, token, hint string) error
}

// Users looks up who a fresh access token belongs to; *pdapi.Client satisfies it.
type Users interface {
	Me(ctx context.Context, apiDomain, accessToken string) (pdapi.Me, error)
}

// Claims makes a single-use code be exchanged once; *tokenstore.Store satisfies it with the
// work-claim protocol. ClaimCode returns tokenstore.ErrWorkClaimed with the live claim to every
// caller but the first; a claim whose lease lapsed is taken over (WorkClaim.TookOver).
type Claims interface {
	ClaimCode(ctx context.Context, codeHash string, ttl time.Duration) (tokenstore.WorkClaim, error)
	CompleteCode(ctx context.Context, codeHash, owner string, id installation.ID, ttl time.Duration) error
	RetireCode(ctx context.Context, codeHash, owner string, ttl time.Duration) error
	ReleaseCode(ctx context.Context, codeHash, owner string) error
}

// Store stores a new installation or a re-install; *tokenstore.Store satisfies it. The result
// carries the stored Version.
type Store interface {
	Install(ctx context.Context, in installation.Installation) (installation.Installation, error)
}

// Existing looks up a user's installation without its tokens; *tokenstore.Store satisfies it.
// Describe returns an error matching installation.ErrNotFound for a user never installed.
type Existing interface {
	Describe(ctx context.Context, id installation.ID) (installation.Installation, error)
}

// Enqueuer queues work for the worker; *jobs.Enqueuer satisfies it.
type Enqueuer interface {
	Enqueue(ctx context.Context, j jobs.Job) error
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

// Defaults for zero Installer fields.
const (
	DefaultClaimTTL        = 30 * time.Minute
	DefaultClaimWait       = 3 * time.Second
	DefaultClaimPoll       = 150 * time.Millisecond
	DefaultDeadlineReserve = 2 * time.Second
)

// Installer runs the install use case. OAuth, Users, Claims and Store are required; Jobs,
// InvalidateCredentials, Alerts and Log are optional. Safe for concurrent use.
type Installer struct {
	OAuth  Exchanger
	Users  Users
	Claims Claims
	Store  Store
	// Existing tells a failed install whether its user already has a working installation,
	// so that its clean-up never revokes what that installation depends on; nil: assume one
	// may exist (only the new access token is revoked). *tokenstore.Store satisfies it.
	Existing Existing
	// Jobs receives a register_webhooks job per install; nil queues nothing.
	Jobs Enqueuer
	// AppInstall also queues the app's install hook (an app_install job) per install, after
	// the installation is stored: the worker runs it with a Pipedrive client and retries.
	AppInstall bool
	// InvalidateCredentials drops cached client credentials when Pipedrive rejects them, so
	// an operator's rotated secret is read on the next request; nil does nothing.
	InvalidateCredentials func()
	// Alerts tells a person about what they must fix (publish-or-log).
	Alerts oncall.Notifier
	// Log receives the use case's side events (failed clean-ups); nil discards. The outcome
	// itself is the caller's to log.
	Log *slog.Logger

	// RedirectURI is the callback URL registered in Developer Hub; required.
	RedirectURI string
	// ClaimTTL is how long a code's claim is kept: a reload within it shows success without a
	// second exchange. DefaultClaimTTL when zero; at least tokenstore.CodeLease.
	ClaimTTL time.Duration
	// ClaimWait bounds how long a request waits for another request exchanging the same code
	// (DefaultClaimWait when zero); ClaimPoll is the interval (DefaultClaimPoll when zero).
	ClaimWait time.Duration
	ClaimPoll time.Duration
	// Retry bounds retries of the token exchange and of users/me; DefaultRetry when Attempts
	// is zero.
	Retry RetryPolicy
	// DeadlineReserve is kept free of retries before the request's deadline, for storing the
	// installation and answering; DefaultDeadlineReserve when zero.
	DeadlineReserve time.Duration
}

// detachedTimeout bounds clean-up calls (releasing a claim, revoking unkept tokens) that must
// run even when the request's context is done, but must not outlive the function either.
const detachedTimeout = 2 * time.Second

// Install exchanges code and stores the installation it belongs to. It never panics on
// Pipedrive's or the store's failures: every one is an Outcome, with the detail in Result.Err.
func (in *Installer) Install(ctx context.Context, code string) Result {
	hash := tokenstore.HashCode(code)
	claim, res, done := in.claim(ctx, hash)
	if done {
		return res
	}
	if claim.TookOver {
		// The request that claimed this code died after CodeLease, maybe after spending the
		// single-use code: exchanging it again cannot be trusted to work, and waiting cannot
		// help. Retire it so every reload within ClaimTTL gets the same answer.
		in.settle(ctx, "retire", func(ctx context.Context) error {
			return in.Claims.RetireCode(ctx, hash, claim.Owner, in.claimTTL())
		})
		return Result{Outcome: Restart, Reason: "code_claim_abandoned"}
	}
	res = in.exchange(ctx, code, hash)
	if res.Outcome == Installed {
		// The installation is stored: from here on the install has succeeded whatever fails.
		if err := in.Claims.CompleteCode(ctx, hash, claim.Owner, res.ID, in.claimTTL()); err != nil {
			in.logger().LogAttrs(ctx, slog.LevelWarn, "complete code claim failed",
				slog.Int64("company_id", res.ID.CompanyID), slog.Int64("user_id", res.ID.UserID), slog.String("error", err.Error()))
		}
		in.enqueue(ctx, res)
		return res
	}
	// Let a retry of the same code (reload) work: only a completed claim is kept.
	in.settle(ctx, "release", func(ctx context.Context) error { return in.Claims.ReleaseCode(ctx, hash, claim.Owner) })
	return res
}

// claim claims the code. done is true when the Result is already decided: another request
// completed it (AlreadyInstalled), retired it (Restart), is still exchanging it after
// ClaimWait (InProgress), or the store failed.
func (in *Installer) claim(ctx context.Context, hash string) (tokenstore.WorkClaim, Result, bool) {
	// Real time, not a test clock: this bounds how long the user waits.
	until := time.Now().Add(in.claimWait())
	for {
		c, err := in.Claims.ClaimCode(ctx, hash, in.claimTTL())
		switch {
		case err == nil:
			return c, Result{}, false
		case !errors.Is(err, tokenstore.ErrWorkClaimed):
			return c, Result{Outcome: Failed, Reason: "store_failed", Err: err}, true
		case c.State == tokenstore.WorkDone && c.ID.Valid():
			// The user reloaded a finished callback: success, without exchanging again.
			return c, Result{Outcome: AlreadyInstalled, Reason: "code_already_used", ID: c.ID}, true
		case c.State != tokenstore.WorkInProgress:
			// Retired (its exchange was abandoned) or a record this protocol does not know.
			return c, Result{Outcome: Restart, Reason: "code_claim_abandoned"}, true
		}
		// Another request is exchanging this code right now: wait for it, boundedly.
		if !time.Now().Before(until) || deadline.Sleep(ctx, in.claimPoll()) != nil {
			return c, Result{Outcome: InProgress, Reason: "code_exchanging"}, true
		}
	}
}

// exchange trades the code for tokens, identifies the user and stores the installation.
func (in *Installer) exchange(ctx context.Context, code, hash string) Result {
	var tok *pdoauth.Token
	err := in.retry(ctx, func(ctx context.Context) error {
		var err error
		tok, err = in.OAuth.Exchange(ctx, code, in.RedirectURI)
		return err
	})
	if err != nil {
		return in.exchangeFailure(ctx, err)
	}
	if tok.APIDomain == "" {
		// Without api_domain there is nowhere to send API calls; Pipedrive always sends one.
		in.Alerts.Notify(ctx, oncall.Alert{Reason: "missing_api_domain", Summary: "Pipedrive's token answer had no api_domain"})
		in.revoke(ctx, tok, installation.ID{})
		return Result{Outcome: IdentityFailed, Reason: "missing_api_domain"}
	}
	var me pdapi.Me
	err = in.retry(ctx, func(ctx context.Context) error {
		var err error
		me, err = in.Users.Me(ctx, tok.APIDomain, tok.AccessToken)
		return err
	})
	if err != nil {
		in.revoke(ctx, tok, installation.ID{})
		return Result{Outcome: IdentityFailed, Reason: "users_me_failed", PipedriveStatus: pderrors.DecisionOf(err).Status, Err: err}
	}
	id := installation.ID{CompanyID: me.CompanyID, UserID: me.ID}
	stored, err := in.Store.Install(ctx, installation.Installation{
		ID:           id,
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		APIDomain:    tok.APIDomain,
		Scopes:       tok.Scopes,
		ExpiresAt:    tok.ExpiresAt,
		CodeHash:     hash,
	})
	if err != nil {
		in.Alerts.Notify(ctx, oncall.Alert{Reason: "install_store_failed", CompanyID: id.CompanyID, UserID: id.UserID,
			Summary: "An installation could not be stored after a successful token exchange", Detail: oncall.ErrorDetail(err)})
		in.revoke(ctx, tok, id)
		return Result{Outcome: Failed, Reason: "store_failed", ID: id, Err: err}
	}
	return Result{Outcome: Installed, Reason: "installed", ID: id, Version: stored.Version}
}

// exchangeFailure classifies a failed exchange.
func (in *Installer) exchangeFailure(ctx context.Context, err error) Result {
	d := pderrors.DecisionOf(err)
	r := Result{Reason: string(d.Reason), PipedriveStatus: d.Status, Err: err}
	switch {
	case d.Reason == pderrors.ReasonAuthCodeExpired:
		r.Outcome = CodeExpired
	case d.Reason == pderrors.ReasonAuthCodeInvalid || d.Reason == pderrors.ReasonInvalidGrant:
		// The code is unknown or used and no completed claim says it was ours (we hold the
		// claim): the user must start again. Not a configuration problem, so no alert.
		r.Outcome = Restart
	case d.Reason == pderrors.ReasonAppNotInstallable:
		r.Outcome = NotInstallable
	case d.Action == pderrors.Retry:
		r.Outcome = Outage
		if d.Alert {
			in.alertDecision(ctx, d)
		}
	default:
		// Client, redirect_uri, content type, grant type and unknown errors: our configuration
		// or our bug. A person must act.
		r.Outcome = ConfigError
		if (d.Reason == pderrors.ReasonClientInvalid || d.Reason == pderrors.ReasonClientCredentialsMissing) && in.InvalidateCredentials != nil {
			// Why: the operator may have just rotated the secret; the next request re-reads
			// it instead of failing with the cached one until the cache expires.
			in.InvalidateCredentials()
		}
		in.alertDecision(ctx, d)
	}
	return r
}

// enqueue queues the register_webhooks job of a new installation version (and the app_install
// job, with AppInstall).
func (in *Installer) enqueue(ctx context.Context, r Result) {
	if in.Jobs == nil {
		return
	}
	id := r.ID
	// One job per install version: a reload enqueues nothing, a reinstall registers again.
	run := "v" + strconv.FormatInt(r.Version, 10)
	in.enqueueOne(ctx, id, jobs.RegisterWebhooks(id, run), "Webhook registration could not be queued for a new installation")
	if in.AppInstall {
		in.enqueueOne(ctx, id, jobs.AppInstall(id, run), "The app's install hook could not be queued for a new installation")
	}
}

// enqueueOne queues j, logging and alerting (summary) when it cannot.
func (in *Installer) enqueueOne(ctx context.Context, id installation.ID, j jobs.Job, summary string) {
	if err := in.Jobs.Enqueue(ctx, j); err != nil {
		in.logger().LogAttrs(ctx, slog.LevelError, "enqueue "+j.Kind+" failed",
			slog.Int64("company_id", id.CompanyID), slog.Int64("user_id", id.UserID),
			slog.String("action", "enqueue"), slog.String("reason", "enqueue_failed"), slog.String("error", err.Error()))
		in.Alerts.Notify(ctx, oncall.Alert{Reason: "enqueue_failed", Severity: oncall.SeverityWarning, CompanyID: id.CompanyID, UserID: id.UserID,
			Summary: summary, Detail: oncall.ErrorDetail(err)})
	}
}

// revoke revokes tokens this install could not keep (users/me or the store failed after a
// successful exchange): tokens nobody holds must not stay valid at Pipedrive. Revoking the
// refresh token revokes all of the user's tokens and uninstalls the app at Pipedrive, which
// would also end a working installation of the same user (a failed reinstall must not break
// it). So the refresh token is revoked only when the user is known (id) and has no working
// installation (Existing says none, or not active); otherwise only the new access token is
// revoked, which touches nothing else, and the new refresh token lapses unused. Detached from
// the request's cancellation; a failure is logged (the tokens were never stored, so nothing
// here leaks).
func (in *Installer) revoke(ctx context.Context, tok *pdoauth.Token, id installation.ID) {
	token, hint, why := tok.AccessToken, "access_token", in.keepReason(ctx, id)
	if why == "" && tok.RefreshToken != "" {
		token, hint = tok.RefreshToken, "refresh_token"
	}
	if token == "" {
		token, hint = tok.RefreshToken, "refresh_token"
		if why != "" || token == "" {
			return // only a refresh token, and revoking it could end a working installation
		}
	}
	dctx, cancel := deadline.Detached(ctx, detachedTimeout)
	defer cancel()
	attrs := []slog.Attr{slog.Int64("company_id", id.CompanyID), slog.Int64("user_id", id.UserID),
		slog.String("action", "revoke"), slog.String("reason", "tokens_not_kept"), slog.String("token_type", hint)}
	if why != "" {
		attrs = append(attrs, slog.String("refresh_token_kept", why))
	}
	if err := in.OAuth.Revoke(dctx, token, hint); err != nil {
		in.logger().LogAttrs(ctx, slog.LevelWarn, "revoke of unkept tokens failed", append(attrs, slog.String("error", err.Error()))...)
		return
	}
	in.logger().LogAttrs(ctx, slog.LevelInfo, "revoked tokens that could not be kept", attrs...)
}

// keepReason says why the refresh token of a failed install must not be revoked ("" when it
// may be): the user is unknown, or may have a working installation.
func (in *Installer) keepReason(ctx context.Context, id installation.ID) string {
	if !id.Valid() {
		return "user_unknown"
	}
	if in.Existing == nil {
		return "existing_unknown"
	}
	dctx, cancel := deadline.Detached(ctx, detachedTimeout)
	defer cancel()
	cur, err := in.Existing.Describe(dctx, id)
	switch {
	case errors.Is(err, installation.ErrNotFound):
		return ""
	case err != nil:
		return "existing_unknown"
	case cur.Status == installation.StatusActive:
		return "working_installation"
	}
	return ""
}

// settle runs a claim clean-up detached from the request's cancellation (a closed tab must not
// leave the code claimed), logging its failure.
func (in *Installer) settle(ctx context.Context, what string, f func(ctx context.Context) error) {
	dctx, cancel := deadline.Detached(ctx, detachedTimeout)
	defer cancel()
	if err := f(dctx); err != nil {
		in.logger().LogAttrs(ctx, slog.LevelWarn, what+" code claim failed", slog.String("error", err.Error()))
	}
}

// alertDecision alerts about a token-exchange decision.
func (in *Installer) alertDecision(ctx context.Context, d pderrors.Decision) {
	summary := "Pipedrive rejected the OAuth token exchange (" + string(d.Reason) + ")"
	if d.Action == pderrors.Retry {
		summary = "Pipedrive's OAuth server kept failing during installs (" + string(d.Reason) + ")"
	}
	detail := d.Message
	if d.Status != 0 {
		detail = "HTTP " + strconv.Itoa(d.Status) + ": " + d.Message
	}
	in.Alerts.Notify(ctx, oncall.Alert{Reason: string(d.Reason), Summary: summary, Detail: detail})
}

// retry runs f up to Retry.Attempts times while its error is a pderrors Retry decision and the
// wait fits in the request's deadline. f gets a context that ends DeadlineReserve before the
// request's deadline: an attempt that runs to its HTTP client's timeout (5 s) must not eat the
// time left for storing and answering, or outlive the function (15 s) altogether.
func (in *Installer) retry(ctx context.Context, f func(ctx context.Context) error) error {
	p := in.Retry
	if p.Attempts <= 0 {
		p = DefaultRetry()
	}
	reserve := in.deadlineReserve()
	actx, cancel := deadline.Reserve(ctx, reserve)
	defer cancel()
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
		if deadline.Short(ctx, reserve+wait) || deadline.Sleep(ctx, wait) != nil {
			return err
		}
	}
}

func (in *Installer) logger() *slog.Logger {
	if in.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return in.Log
}

func (in *Installer) claimTTL() time.Duration {
	if in.ClaimTTL > 0 {
		return in.ClaimTTL
	}
	return DefaultClaimTTL
}

func (in *Installer) claimWait() time.Duration {
	if in.ClaimWait > 0 {
		return in.ClaimWait
	}
	return DefaultClaimWait
}

func (in *Installer) claimPoll() time.Duration {
	if in.ClaimPoll > 0 {
		return in.ClaimPoll
	}
	return DefaultClaimPoll
}

func (in *Installer) deadlineReserve() time.Duration {
	if in.DeadlineReserve > 0 {
		return in.DeadlineReserve
	}
	return DefaultDeadlineReserve
}
