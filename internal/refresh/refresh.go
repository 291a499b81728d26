package refresh

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/deadline"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// OAuth exchanges a refresh token at Pipedrive; *pdoauth.Client satisfies it. The returned
// Token's RefreshToken is the one to store (the old one when the answer had none); errors carry
// a pderrors.Decision (pderrors.DecisionOf).
type OAuth interface {
	Refresh(ctx context.Context, refreshToken string) (*pdoauth.Token, error)
}

// Store keeps installations and guards each one's refresh with a lease; *tokenstore.Store
// (DynamoDB) and refreshtest.Store (memory) satisfy it. It must be safe for concurrent use.
// Errors that Refresh branches on wrap the domain's sentinels (installation.Err…); any other
// error is a store failure.
type Store interface {
	// Lease takes id's refresh lease for owner until now+ttl and returns the installation as
	// it is then. ErrLeaseHeld: another owner's lease is unexpired; ErrNotActive: needs
	// reauthorization or uninstalled; ErrNotFound.
	Lease(ctx context.Context, id installation.ID, owner string, ttl time.Duration) (installation.Installation, error)
	// SaveRefreshed stores tok (empty RefreshToken or APIDomain and nil Scopes keep the stored
	// ones), resets the failure count, makes the installation due at
	// installation.RefreshDueAt(tok.ExpiresAt) and releases the lease, only while owner holds
	// it at version. ErrLeaseLost or ErrConflict otherwise; ErrNotActive; ErrNotFound. A
	// repeated save that already landed succeeds.
	SaveRefreshed(ctx context.Context, id installation.ID, owner string, version int64, tok installation.Tokens) (installation.Installation, error)
	// RecordFailure counts a failed refresh, stores reason, makes the installation due at
	// retryAt and releases owner's lease. ErrLeaseLost; ErrNotActive; ErrNotFound.
	RecordFailure(ctx context.Context, id installation.ID, owner string, reason string, retryAt time.Time) error
	// MarkNeedsReauth sets StatusNeedsReauth (out of the due list), counts the failure and
	// releases owner's lease. ErrLeaseLost; ErrNotActive; ErrNotFound.
	MarkNeedsReauth(ctx context.Context, id installation.ID, owner string, reason string) error
	// Release drops owner's lease without other changes. ErrLeaseLost; ErrNotFound.
	Release(ctx context.Context, id installation.ID, owner string) error
	// Reschedule drops owner's lease and makes the installation due at dueAt (its
	// refresh-due entry no longer matched installation.NextRefresh). ErrLeaseLost;
	// ErrNotActive; ErrNotFound.
	Reschedule(ctx context.Context, id installation.ID, owner string, dueAt time.Time) error
	// MarkUse records a use of in as read: WarmUntil becomes installation.UseMarkUntil(now)
	// and the refresh-due entry installation.NextRefresh of the result, conditional on in's
	// Version and on no lease being held. ErrConflict when in changed since it was read.
	MarkUse(ctx context.Context, in installation.Installation) (installation.Installation, error)
}

var _ OAuth = (*pdoauth.Client)(nil)

// Outcome is what one Refresh did. The values are stable strings, logged as "action".
type Outcome string

// The outcomes. Only OutcomeFailed comes with a non-nil error.
const (
	// OutcomeRefreshed: new tokens are stored; Result.Installation holds them.
	OutcomeRefreshed Outcome = "refreshed"
	// OutcomeFresh: another process refreshed the installation a moment ago (or, for
	// RefreshRejected, the stored access token is no longer the rejected one); nothing was
	// called and Result.Installation holds the current tokens.
	OutcomeFresh Outcome = "fresh"
	// OutcomeLeaseHeld: another process is refreshing the installation right now.
	OutcomeLeaseHeld Outcome = "lease_held"
	// OutcomeNeedsReauth: Pipedrive rejected the refresh token; the installation is marked
	// needs_reauthorization (out of the refresh index) and a person was alerted. The user
	// must install the app again.
	OutcomeNeedsReauth Outcome = "needs_reauth"
	// OutcomeRetryLater: a transient failure (5xx, 429, timeout, network) was recorded; the
	// installation is due again at Result.RetryAt.
	OutcomeRetryLater Outcome = "retry_later"
	// OutcomeFailed: the refresh failed in a way retrying alone does not fix (a configuration
	// error Pipedrive reported, recorded with a backoff and alerted), or its result could not
	// be stored (see ErrTokensNotSaved), or the store could not be reached. The error says which.
	OutcomeFailed Outcome = "failed"
	// OutcomeNotActive: the installation was uninstalled or needs reauthorization.
	OutcomeNotActive Outcome = "not_active"
	// OutcomeNotFound: no such installation.
	OutcomeNotFound Outcome = "not_found"
	// OutcomeSkipped: too little time was left before the caller's deadline (or the lease's
	// end) to call Pipedrive and store the answer; the lease was released and nothing changed,
	// so the installation is still due.
	OutcomeSkipped Outcome = "skipped"
)

// Defaults for zero Refresher fields.
const (
	// DefaultLeaseTTL is longer than one refresh (a token call of at most pdoauth's 5 s
	// timeout plus a store write) and shorter than the refresh schedule, so a lease left by a
	// crashed process is free again by the next run.
	DefaultLeaseTTL = 60 * time.Second
	// DefaultSaveTimeout bounds each store write and alert after the token call, which runs
	// detached from the caller's context.
	DefaultSaveTimeout = 5 * time.Second
)

// minCallTime is the least time a token call is started with; with less, the refresh is
// skipped rather than recorded as a timeout failure.
const minCallTime = 250 * time.Millisecond

// Sentinel errors; test with errors.Is.
var (
	// ErrTokensNotSaved: Pipedrive answered with new tokens but they could not be stored
	// (another owner took the lease, the version moved on, or the store failed). With
	// refresh-token rotation the installation's stored refresh token may now be invalid.
	ErrTokensNotSaved = errors.New("refresh: new tokens were not saved")
	// ErrMisconfigured: the Refresher lacks OAuth, Store or Owner.
	ErrMisconfigured = errors.New("refresh: refresher misconfigured")
)

// DefaultBackoff is the wait before retrying after the failures-th consecutive failure:
// 1 min, 2 min, 4 min, … capped at one hour.
func DefaultBackoff(failures int) time.Duration {
	if failures < 1 {
		failures = 1
	}
	if failures > 7 { // 1 min << 6 is already beyond the cap; avoid overflowing the shift
		return time.Hour
	}
	return min(time.Minute<<(failures-1), time.Hour)
}

// Refresher refreshes one installation at a time safely (see the package documentation). OAuth,
// Store and Owner are required; the rest is optional. Safe for concurrent use, also for the
// same installation, as long as its fields are not changed.
type Refresher struct {
	// OAuth calls Pipedrive's refresh_token grant.
	OAuth OAuth
	// Store holds the installations and their leases.
	Store Store
	// Alerts is told about lost grants, configuration errors and unsaved tokens (e.g.
	// *alerts.Publisher); nil only logs.
	Alerts oncall.Sender
	// Log receives one event per decision; nil discards.
	Log *slog.Logger
	// Metrics counts each decision (metrics.Refreshes by outcome) and each token call
	// (metrics.TokenCalls by the answer's action); nil counts nothing.
	Metrics *metrics.Emitter
	// Owner identifies this process in leases, e.g. the function name and log stream. Each
	// Refresh call leases as Owner plus a random suffix, so concurrent calls in one process
	// exclude each other too.
	Owner string
	// LeaseTTL is how long a lease is held (DefaultLeaseTTL when zero): longer than one
	// refresh, shorter than the refresh schedule.
	LeaseTTL time.Duration
	// SaveTimeout bounds each store write and alert after the lease is taken (DefaultSaveTimeout
	// when zero). The token call ends SaveTimeout before the caller's deadline and the
	// lease's end, so the write that follows it has that long.
	SaveTimeout time.Duration
	// Backoff is the wait after the n-th consecutive failure (n >= 1); DefaultBackoff when nil.
	// A server's Retry-After, when longer, wins.
	Backoff func(failures int) time.Duration
	// InvalidateCredentials, when set, is called after Pipedrive rejects the client
	// credentials, so a secret the operator has just rotated is read again (e.g.
	// (*clientcreds.Source).Invalidate).
	InvalidateCredentials func()
	// Now is the clock for expiry and retry times; time.Now when nil. Context deadlines use
	// real time.
	Now func() time.Time
}

// Result is what one Refresh decided.
type Result struct {
	ID      installation.ID
	Outcome Outcome
	// Reason is a stable, loggable reason: the pderrors reason of Pipedrive's answer for a
	// failed token call, or one of this package's ("due", "forced", "lease_held",
	// "tokens_not_saved", …).
	Reason string
	// Installation is the installation after the decision, as far as it is known: with the
	// new tokens after OutcomeRefreshed, the current ones after OutcomeFresh, as leased for
	// the failure outcomes; zero when it could not be leased. It never prints its tokens.
	Installation installation.Installation
	// Decision is the classification of a failed token call; zero when none failed.
	Decision pderrors.Decision
	// RetryAt is when the installation is due again after OutcomeRetryLater and after a
	// recorded OutcomeFailed; zero otherwise.
	RetryAt time.Time
}

// mode is what makes an installation worth refreshing.
type mode int

const (
	modeDue           mode = iota // only when Due
	modeForce                     // always
	modeRejected                  // only while the stored access token is the rejected one
	modeUse                       // only while the access token is not Usable; records a use
	modeEnsure                    // only while the access token is not Usable; records no use
	modeRejectedQuiet             // as modeRejected; records no use
)

// Refresh refreshes installation id: when it is Due, or always
// when force is set. It returns a nil error for every outcome except OutcomeFailed, whose
// error explains the failure (errors.Is ErrTokensNotSaved when Pipedrive's new tokens could
// not be stored). Every outcome has been recorded in the store and logged when Refresh returns.
func (r *Refresher) Refresh(ctx context.Context, id installation.ID, force bool) (Result, error) {
	m := modeDue
	if force {
		m = modeForce
	}
	return r.run(ctx, id, m, "")
}

// RefreshRejected is for a caller whose API call with accessToken was answered 401: it
// refreshes the installation unless the stored access token is already a different one (then
// OutcomeFresh: another process refreshed it, retry with Result.Installation's token). The
// comparison happens under the lease, so of many callers that saw the same 401 only one
// refreshes. An empty accessToken refreshes unconditionally, like Refresh with force.
// Results and errors are as for Refresh.
func (r *Refresher) RefreshRejected(ctx context.Context, id installation.ID, accessToken string) (Result, error) {
	if accessToken == "" {
		return r.run(ctx, id, modeForce, "")
	}
	return r.run(ctx, id, modeRejected, accessToken)
}

// RefreshRejectedQuietly is RefreshRejected for the kit's background work (see Ensure): the
// refresh records no use, so an idle installation stays idle. Results and errors are as for
// RefreshRejected.
func (r *Refresher) RefreshRejectedQuietly(ctx context.Context, id installation.ID, accessToken string) (Result, error) {
	if accessToken == "" {
		return r.run(ctx, id, modeForce, "")
	}
	return r.run(ctx, id, modeRejectedQuiet, accessToken)
}

// Use is for a caller about to act for in (as it just read it: a job): it makes in's access
// token usable and records the use, so the scheduled refresher keeps the installation warm
// for installation.InUseFor. A Usable token is returned as is (OutcomeFresh, reason
// "usable"), with a use mark written only when installation.NeedsUseMark says so, at most
// once per installation.UseMarkEvery; a failed mark is logged and ignored (the next use marks
// again). A token that is not Usable (an idle installation's expired token, or none) is
// refreshed under the lease, the save recording the use (no extra write); if another process
// refreshed it meanwhile, OutcomeFresh with its tokens. Results and errors are as for Refresh.
func (r *Refresher) Use(ctx context.Context, in installation.Installation) (Result, error) {
	now := r.now()
	if !Usable(in, now) {
		return r.run(ctx, in.ID, modeUse, "")
	}
	res := Result{ID: in.ID, Outcome: OutcomeFresh, Reason: "usable", Installation: in}
	if !installation.NeedsUseMark(in, now) || r.Store == nil {
		return res, nil
	}
	if marked, err := r.Store.MarkUse(ctx, in); err != nil {
		r.logger().LogAttrs(ctx, slog.LevelDebug, "refresh use mark skipped",
			slog.Int64("company_id", in.ID.CompanyID), slog.Int64("user_id", in.ID.UserID),
			slog.String("action", "use_mark"), slog.String("reason", "store"), slog.String("error", err.Error()))
	} else {
		res.Installation = marked
	}
	return res, nil
}

// Ensure is Use for background work the kit does on its own (the daily webhook health check,
// a catch-up): it makes in's access token usable, refreshing it under the lease when it is not
// Usable, but records no use. The save leaves WarmUntil as it was, so an idle installation
// stays idle: the scheduled refresher next refreshes it installation.KeepAlive after this
// refresh, instead of keeping its access token warm for installation.InUseFor. A Usable token
// is returned as is (OutcomeFresh, reason "usable") without any write. Results and errors are
// as for Refresh.
func (r *Refresher) Ensure(ctx context.Context, in installation.Installation) (Result, error) {
	if !Usable(in, r.now()) {
		return r.run(ctx, in.ID, modeEnsure, "")
	}
	return Result{ID: in.ID, Outcome: OutcomeFresh, Reason: "usable", Installation: in}, nil
}

// run is one refresh: lease, decide, call, record, log.
func (r *Refresher) run(ctx context.Context, id installation.ID, m mode, rejected string) (Result, error) {
	res := Result{ID: id}
	if r.OAuth == nil || r.Store == nil || r.Owner == "" {
		err := fmt.Errorf("refresh %s: %w: OAuth, Store and Owner are required", id, ErrMisconfigured)
		return r.finish(ctx, res, OutcomeFailed, "misconfigured", err)
	}
	owner := r.Owner + "/" + rand.Text()
	// Real time: the lease's end is compared with context deadlines below.
	leasedAt := time.Now()
	in, err := r.Store.Lease(ctx, id, owner, r.leaseTTL())
	switch {
	case errors.Is(err, installation.ErrLeaseHeld):
		return r.finish(ctx, res, OutcomeLeaseHeld, "lease_held", nil)
	case errors.Is(err, installation.ErrNotActive):
		return r.finish(ctx, res, OutcomeNotActive, "not_active", nil)
	case errors.Is(err, installation.ErrNotFound):
		return r.finish(ctx, res, OutcomeNotFound, "not_found", nil)
	case err != nil:
		return r.finish(ctx, res, OutcomeFailed, "store_failed", fmt.Errorf("refresh %s: %w", id, err))
	}
	res.Installation = in

	reason := "due"
	switch m {
	case modeForce:
		reason = "forced"
	case modeRejected, modeRejectedQuiet:
		reason = "rejected"
		if in.AccessToken != rejected {
			return r.release(ctx, res, owner, OutcomeFresh, "already_refreshed")
		}
	case modeUse, modeEnsure:
		reason = "in_use"
		if m == modeEnsure {
			reason = "background"
		}
		if Usable(in, r.now()) {
			// Another job's refresh got there first.
			return r.release(ctx, res, owner, OutcomeFresh, "already_refreshed")
		}
	default:
		if !Due(in, r.now()) {
			// Listed as due, but someone refreshed it between the index read and the lease;
			// or its index entry predates the due rule (an idle installation written as warm):
			// then it moves to where the rule puts it, without a token call.
			if next := installation.NextRefresh(in); in.FailureCount == 0 && !in.RefreshDueAt.Equal(next) {
				return r.reschedule(ctx, res, owner, next)
			}
			return r.release(ctx, res, owner, OutcomeFresh, "not_due")
		}
	}
	if m != modeForce && in.FailureCount > 0 && in.RefreshDueAt.After(r.now()) {
		// A failed refresh stored when to try again (Pipedrive's Retry-After or the backoff).
		// The refresher only lists due installations; this holds back the API worker, whose
		// jobs would otherwise call the token endpoint during an outage or a 429.
		res.RetryAt = in.RefreshDueAt
		return r.release(ctx, res, owner, OutcomeRetryLater, "backoff")
	}
	if in.RefreshToken == "" {
		// An active installation always has one; without it only a new install helps.
		return r.reauthorize(ctx, res, owner, pderrors.Decision{Action: pderrors.Reauthorize, Reason: "refresh_token_missing"})
	}

	callCtx, cancel := r.callContext(ctx, leasedAt)
	defer cancel()
	if dl, _ := callCtx.Deadline(); time.Until(dl) < minCallTime {
		return r.release(ctx, res, owner, OutcomeSkipped, "deadline")
	}
	tok, err := r.OAuth.Refresh(callCtx, in.RefreshToken)
	cancel()
	r.Metrics.Count(metrics.TokenCalls, metrics.Outcome(pderrors.DecisionOf(err).Action.String()))
	if err != nil {
		return r.tokenFailure(ctx, res, owner, err)
	}

	// The next due time follows the rule on the installation as saved; a refresh a job asked
	// for records the use in the same write.
	next := in
	next.ExpiresAt, next.RefreshedAt = tok.ExpiresAt, r.now()
	var warm time.Time
	if m == modeUse || m == modeRejected {
		warm = installation.UseMarkUntil(r.now())
		if in.WarmUntil.After(warm) {
			warm = in.WarmUntil
		}
		next.WarmUntil = warm
	}
	sctx, scancel := deadline.Detached(ctx, r.saveTimeout())
	defer scancel()
	saved, err := r.Store.SaveRefreshed(sctx, id, owner, in.Version, installation.Tokens{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		APIDomain:    tok.APIDomain,
		Scopes:       tok.Scopes,
		ExpiresAt:    tok.ExpiresAt,
		WarmUntil:    warm,
		NextRefresh:  installation.NextRefresh(next),
	})
	switch {
	case errors.Is(err, installation.ErrNotActive):
		// Uninstalled while we refreshed: the new tokens are discarded, as they should be.
		return r.finish(ctx, res, OutcomeNotActive, "not_active", nil)
	case errors.Is(err, installation.ErrNotFound):
		return r.finish(ctx, res, OutcomeNotFound, "not_found", nil)
	case err != nil:
		err = fmt.Errorf("refresh %s: %w: %w", id, ErrTokensNotSaved, err)
		r.notify(ctx, oncall.Alert{
			Reason: "refresh_tokens_not_saved", Severity: oncall.SeverityCritical,
			CompanyID: id.CompanyID, UserID: id.UserID,
			Summary: "Pipedrive refreshed an installation's tokens but they could not be stored; with refresh-token rotation the user may have to install the app again",
			Detail:  oncall.ErrorDetail(err),
		})
		return r.finish(ctx, res, OutcomeFailed, "tokens_not_saved", err)
	}
	res.Installation = saved
	return r.finish(ctx, res, OutcomeRefreshed, reason, nil,
		slog.Bool("refresh_token_rotated", tok.RefreshToken != in.RefreshToken),
		slog.Bool("api_domain_changed", saved.APIDomain != in.APIDomain),
		slog.Time("expires_at", saved.ExpiresAt))
}

// tokenFailure records a failed token call as its Decision asks.
func (r *Refresher) tokenFailure(ctx context.Context, res Result, owner string, callErr error) (Result, error) {
	d := pderrors.DecisionOf(callErr)
	res.Decision = d
	switch d.Action {
	case pderrors.Reauthorize:
		return r.reauthorize(ctx, res, owner, d)
	case pderrors.DeadLetter:
		// Our configuration or our bug (invalid client, redirect, grant type, an untrusted
		// api_domain): retrying alone cannot help, but a person may fix it, so retry slowly.
		if d.Reason == pderrors.ReasonClientInvalid || d.Reason == pderrors.ReasonClientCredentialsMissing {
			if r.InvalidateCredentials != nil {
				r.InvalidateCredentials()
			}
		}
		// Record first (the backoff must be stored even if the alert is slow), then alert
		// app-wide (no ids): one alert per reason and hour, not one per installation.
		retryAt := r.now().Add(r.backoff(res.Installation.FailureCount + 1))
		var err error
		res, err = r.recordFailure(ctx, res, owner, string(d.Reason), retryAt)
		r.notify(ctx, oncall.Alert{
			Reason: string(d.Reason), Severity: oncall.SeverityCritical,
			Summary: "Pipedrive refused a token refresh: configuration error, refreshes are failing",
			Detail:  fmt.Sprintf("first seen for installation %s: %s", res.ID, oncall.ErrorDetail(callErr)),
		})
		if err != nil {
			return r.finish(ctx, res, OutcomeFailed, "store_failed", err)
		}
		if res.Outcome != "" { // not active or gone meanwhile
			return r.finish(ctx, res, res.Outcome, res.Reason, nil)
		}
		return r.finish(ctx, res, OutcomeFailed, string(d.Reason), fmt.Errorf("refresh %s: %w", res.ID, callErr))
	}
	// Retry, and anything unexpected from an OAuth call: record when to try again, then alert.
	retryAt := r.now().Add(max(d.RetryAfter, r.backoff(res.Installation.FailureCount+1)))
	res, err := r.recordFailure(ctx, res, owner, string(d.Reason), retryAt)
	if d.Alert {
		r.notify(ctx, oncall.Alert{
			Reason: string(d.Reason), Severity: oncall.SeverityWarning,
			Summary: "Pipedrive's OAuth server answered a token refresh in a way that needs a look",
			Detail:  fmt.Sprintf("installation %s: %s", res.ID, oncall.ErrorDetail(callErr)),
		})
	}
	if err != nil {
		return r.finish(ctx, res, OutcomeFailed, "store_failed", err)
	}
	if res.Outcome != "" {
		return r.finish(ctx, res, res.Outcome, res.Reason, nil)
	}
	return r.finish(ctx, res, OutcomeRetryLater, string(d.Reason), nil, slog.String("error", oncall.ErrorDetail(callErr)))
}

// recordFailure stores a failure due again at retryAt. When the installation stopped being
// active or disappeared meanwhile, it returns res with that Outcome set; on other store errors,
// a non-nil error (the installation keeps its old due time and the lease expires by itself).
func (r *Refresher) recordFailure(ctx context.Context, res Result, owner, reason string, retryAt time.Time) (Result, error) {
	sctx, cancel := deadline.Detached(ctx, r.saveTimeout())
	defer cancel()
	err := r.Store.RecordFailure(sctx, res.ID, owner, reason, retryAt)
	switch {
	case errors.Is(err, installation.ErrNotActive):
		res.Outcome, res.Reason = OutcomeNotActive, "not_active"
	case errors.Is(err, installation.ErrNotFound):
		res.Outcome, res.Reason = OutcomeNotFound, "not_found"
	case err != nil:
		return res, fmt.Errorf("refresh %s: record failure %s: %w", res.ID, reason, err)
	default:
		res.RetryAt = retryAt
		res.Installation.FailureCount++
		res.Installation.LastFailure = reason
		res.Installation.LeaseOwner, res.Installation.LeaseUntil = "", time.Time{}
		res.Installation.Version++
	}
	return res, nil
}

// reauthorize marks the installation for reauthorization and alerts: the grant is gone.
func (r *Refresher) reauthorize(ctx context.Context, res Result, owner string, d pderrors.Decision) (Result, error) {
	reason := string(d.Reason)
	sctx, cancel := deadline.Detached(ctx, r.saveTimeout())
	defer cancel()
	err := r.Store.MarkNeedsReauth(sctx, res.ID, owner, reason)
	switch {
	case errors.Is(err, installation.ErrNotActive):
		return r.finish(ctx, res, OutcomeNotActive, "not_active", nil)
	case errors.Is(err, installation.ErrNotFound):
		return r.finish(ctx, res, OutcomeNotFound, "not_found", nil)
	case err != nil:
		return r.finish(ctx, res, OutcomeFailed, "store_failed", fmt.Errorf("refresh %s: mark needs reauthorization: %w", res.ID, err))
	}
	res.Installation.Status = installation.StatusNeedsReauth
	res.Installation.FailureCount++
	res.Installation.LastFailure = reason
	res.Installation.LeaseOwner, res.Installation.LeaseUntil = "", time.Time{}
	res.Installation.Version++
	detail := "HTTP " + strconv.Itoa(d.Status) + ": " + d.Message
	if d.Status == 0 {
		detail = reason
	}
	r.notify(ctx, oncall.Alert{
		Reason: reason, Severity: oncall.SeverityWarning, CompanyID: res.ID.CompanyID, UserID: res.ID.UserID,
		Summary: "Pipedrive rejected an installation's refresh token: the user must install the app again",
		Detail:  detail,
	})
	return r.finish(ctx, res, OutcomeNeedsReauth, reason, nil)
}

// release gives the lease back and finishes with outcome; a failed release is logged only
// (the lease expires by itself after LeaseTTL).
func (r *Refresher) release(ctx context.Context, res Result, owner string, o Outcome, reason string) (Result, error) {
	sctx, cancel := deadline.Detached(ctx, r.saveTimeout())
	defer cancel()
	if err := r.Store.Release(sctx, res.ID, owner); err != nil {
		return r.finish(ctx, res, o, reason, nil, slog.String("release_error", err.Error()))
	}
	res.Installation.LeaseOwner, res.Installation.LeaseUntil = "", time.Time{}
	res.Installation.Version++
	return r.finish(ctx, res, o, reason, nil)
}

// reschedule gives the lease back with the installation due at dueAt: OutcomeFresh, nothing
// refreshed. A failed write is logged only (the lease expires by itself; the next run tries
// again).
func (r *Refresher) reschedule(ctx context.Context, res Result, owner string, dueAt time.Time) (Result, error) {
	sctx, cancel := deadline.Detached(ctx, r.saveTimeout())
	defer cancel()
	if err := r.Store.Reschedule(sctx, res.ID, owner, dueAt); err != nil {
		return r.finish(ctx, res, OutcomeFresh, "not_due", nil, slog.String("release_error", err.Error()))
	}
	res.Installation.LeaseOwner, res.Installation.LeaseUntil = "", time.Time{}
	res.Installation.RefreshDueAt = dueAt
	res.Installation.Version++
	return r.finish(ctx, res, OutcomeFresh, "not_due", nil, slog.Time("due_at", dueAt))
}

// finish sets the outcome, logs the one event for this decision and returns.
func (r *Refresher) finish(ctx context.Context, res Result, o Outcome, reason string, err error, extra ...slog.Attr) (Result, error) {
	res.Outcome, res.Reason = o, reason
	level := slog.LevelInfo
	switch o {
	case OutcomeRetryLater, OutcomeNeedsReauth, OutcomeSkipped:
		level = slog.LevelWarn
	case OutcomeFailed:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.Int64("company_id", res.ID.CompanyID),
		slog.Int64("user_id", res.ID.UserID),
		slog.String("action", string(o)),
		slog.String("reason", reason),
		slog.Int("status", res.Decision.Status),
		slog.Int64("version", res.Installation.Version),
	}
	if !res.RetryAt.IsZero() {
		attrs = append(attrs, slog.Time("retry_at", res.RetryAt))
	}
	if err != nil {
		// Errors from this project's packages never contain a token, a code or a body.
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	r.logger().LogAttrs(ctx, level, "refresh "+string(o), append(attrs, extra...)...)
	r.Metrics.Count(metrics.Refreshes, metrics.Outcome(string(o)))
	return res, err
}

// notify tells a person, publishing detached from the caller's cancellation (bounded by
// SaveTimeout), or logs when there is no Alerts or the publish fails.
func (r *Refresher) notify(ctx context.Context, a oncall.Alert) {
	n := oncall.Notifier{Log: r.logger(), Timeout: r.saveTimeout()}
	if r.Alerts != nil {
		n.Sender = r.Alerts
	}
	n.Notify(ctx, a)
}

// callContext bounds the token call: it must end SaveTimeout before the caller's deadline
// (so the store write fits) and before the lease ends (so no second owner can lease and spend
// the same refresh token while this call is in flight).
func (r *Refresher) callContext(ctx context.Context, leasedAt time.Time) (context.Context, context.CancelFunc) {
	end := leasedAt.Add(r.leaseTTL())
	if dl, ok := ctx.Deadline(); ok && dl.Before(end) {
		end = dl
	}
	return context.WithDeadline(ctx, end.Add(-r.saveTimeout()))
}

func (r *Refresher) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Refresher) leaseTTL() time.Duration {
	if r.LeaseTTL > 0 {
		return r.LeaseTTL
	}
	return DefaultLeaseTTL
}

func (r *Refresher) saveTimeout() time.Duration {
	if r.SaveTimeout > 0 {
		return r.SaveTimeout
	}
	return DefaultSaveTimeout
}

func (r *Refresher) backoff(failures int) time.Duration {
	if r.Backoff != nil {
		return r.Backoff(failures)
	}
	return DefaultBackoff(failures)
}

func (r *Refresher) logger() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}
