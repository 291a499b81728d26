// Package pdwork holds the Pipedrive job runners the worker engine (internal/worker) runs:
// api_call and register_webhooks, and the Session they share, which acts for one installation:
// it loads the installation, refuses to act for one that cannot (uninstalled, needing
// reauthorization), keeps its access token usable, refreshes once after a 401 and turns every
// failure into the job's worker.Verdict, alerting when a person must act.
package pdwork

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// Reasons of the runners' own decisions (Pipedrive's answers use pderrors reasons).
const (
	ReasonWebhookURLUnset          = "webhook_url_unset"
	ReasonStoreFailed              = "store_failed"
	ReasonInstallationNotFound     = "installation_not_found"
	ReasonInstallationUninstalled  = "installation_uninstalled"
	ReasonNeedsReauth              = "needs_reauthorization"
	ReasonInstallationNotActive    = "installation_not_active"
	ReasonRefreshInProgress        = "refresh_in_progress"
	ReasonRefreshFailed            = "refresh_failed"
	ReasonUnauthorizedAfterRefresh = "unauthorized_after_refresh"
	// ReasonTokenInClear: the installation's token is stored in clear and the store refuses
	// it (tokenstore.Store.RefusePlaintext).
	ReasonTokenInClear = "token_in_clear"
)

// Installations reads installations; *tokenstore.Store satisfies it. Get returns an error
// matching installation.ErrNotFound for an installation never stored.
type Installations interface {
	Get(ctx context.Context, id installation.ID) (installation.Installation, error)
}

// Refresher refreshes an installation's tokens, one refresh at a time across all instances;
// *refresh.Refresher satisfies it. Only refresh.OutcomeFailed comes with an error.
type Refresher interface {
	// Refresh refreshes when the access token is about to expire, or always with force.
	Refresh(ctx context.Context, id installation.ID, force bool) (refresh.Result, error)
	// RefreshRejected refreshes after accessToken was answered 401, unless another process
	// already replaced it (refresh.OutcomeFresh with the current tokens).
	RefreshRejected(ctx context.Context, id installation.ID, accessToken string) (refresh.Result, error)
	// Use makes in's access token usable (refreshing it when it is not) and records the use,
	// so that an installation in use is kept warm (refresh.Refresher.Use).
	Use(ctx context.Context, in installation.Installation) (refresh.Result, error)
	// Ensure makes in's access token usable like Use but records no use, for the kit's
	// background work (jobs.Background), so that it never keeps an idle installation warm
	// (refresh.Refresher.Ensure).
	Ensure(ctx context.Context, in installation.Installation) (refresh.Result, error)
	// RefreshRejectedQuietly is RefreshRejected for background work: it records no use.
	RefreshRejectedQuietly(ctx context.Context, id installation.ID, accessToken string) (refresh.Result, error)
}

// API performs one Pipedrive call; *pdapi.Client satisfies it. A non-2xx answer is a
// *pderrors.Error (pderrors.DecisionOf).
type API interface {
	Do(ctx context.Context, method, apiDomain, path, accessToken string, body []byte) (pdapi.Response, error)
}

// DefaultRefreshBusyDelay is the wait (a deferral before any call, a retry after a 401) when
// another process is refreshing the installation's tokens.
const DefaultRefreshBusyDelay = 5 * time.Second

// Sessions opens a Session per job. Installations, Refresher and API are required. Safe for
// concurrent use.
type Sessions struct {
	Installations Installations
	Refresher     Refresher
	API           API
	// Alerts is told when a person must act (reauthorization, a broken grant, a call the
	// classifier marks Alert).
	Alerts alerts.Notifier
	// RefreshBusyDelay: see DefaultRefreshBusyDelay.
	RefreshBusyDelay time.Duration
	// Limits, when set, keeps calls within Pipedrive's limits: a paused company's jobs wait
	// (deferred, not attempted), and every call is paced to its token's burst window. Without
	// it a pause decision only defers the job that got it.
	Limits *Limits
	// Now is the clock for token expiry; time.Now when nil.
	Now func() time.Time
}

// Decided is the error of a Session when the job's fate is decided: Verdict says retry or
// dead-letter, and why. The Session has alerted already when a person must act.
type Decided struct {
	Verdict worker.Verdict
}

// Error is the verdict's outcome and reason, with its error or message.
func (d *Decided) Error() string {
	s := "pdwork: " + string(d.Verdict.Outcome) + " (" + d.Verdict.Reason + ")"
	if d.Verdict.Err != nil {
		return s + ": " + d.Verdict.Err.Error()
	}
	if d.Verdict.Message != "" {
		return s + ": " + d.Verdict.Message
	}
	return s
}

// Unwrap returns the verdict's error.
func (d *Decided) Unwrap() error { return d.Verdict.Err }

// VerdictOf is the verdict a runner returns for a Session's error: a *Decided's Verdict; any
// other error is retried.
func VerdictOf(err error) worker.Verdict {
	var d *Decided
	if errors.As(err, &d) {
		return d.Verdict
	}
	return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: string(pderrors.ReasonUnexpected), Err: err}
}

func decided(v worker.Verdict) error { return &Decided{Verdict: v} }

// Session acts for the installation of one job: Do and Call run Pipedrive calls with its
// current tokens. Not safe for concurrent use (a job's calls run one after another).
type Session struct {
	s   *Sessions
	job jobs.Job
	in  installation.Installation
	// refreshedAfter401 is set once the session has refreshed after a 401: a second 401 is final.
	refreshedAfter401 bool
	// probe is set when this job probes its paused company: a success lifts the pause.
	probe bool
	// background is set for the kit's background jobs (jobs.Background): no refresh records
	// a use.
	background bool
	// unrepeatable marks the call in progress as one that must not be repeated, whatever the
	// job says (DoUnrepeatable).
	unrepeatable bool
	// header is the last answer's headers, when the call reported them (Do does).
	header http.Header
}

// Open loads the installation j acts for, checks that it can act (active) and makes its access
// token usable (refresh.Usable), refreshing when it is not. The error is a *Decided: not found,
// uninstalled or needing reauthorization dead-letter (the last alerts); a store failure
// retries; a refresh in progress elsewhere defers the job (not an attempt: Pipedrive was not
// called), after Sessions.RefreshBusyDelay.
func (s *Sessions) Open(ctx context.Context, j jobs.Job) (*Session, error) {
	id := installation.ID{CompanyID: j.CompanyID, UserID: j.UserID}
	in, err := s.Installations.Get(ctx, id)
	switch {
	case errors.Is(err, installation.ErrNotFound):
		return nil, decided(worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonInstallationNotFound, Message: "no installation " + id.String()})
	case errors.Is(err, installation.ErrTokenInClear):
		// Planted by someone who can write the table, or a table not sealed yet: never used.
		s.Alerts.Notify(ctx, alerts.Alert{Reason: ReasonTokenInClear, Severity: alerts.SeverityCritical, CompanyID: id.CompanyID, UserID: id.UserID,
			Summary: "An installation's token is stored in clear and was refused; its jobs are dead-lettered",
			Detail:  "job " + j.ID + " (" + j.Kind + "): find who wrote the item, or seal an older table with pdctl tokens seal"})
		return nil, decided(worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonTokenInClear, Message: "the installation's token is stored in clear", Err: err})
	case err != nil:
		return nil, decided(worker.Verdict{Outcome: worker.OutcomeRetry, Reason: ReasonStoreFailed, Err: err})
	}
	switch in.Status {
	case installation.StatusActive:
	case installation.StatusUninstalled:
		return nil, decided(worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonInstallationUninstalled, Message: "the app was uninstalled"})
	case installation.StatusNeedsReauth:
		s.Alerts.Notify(ctx, alerts.Alert{Reason: ReasonNeedsReauth, Severity: alerts.SeverityWarning, CompanyID: id.CompanyID, UserID: id.UserID,
			Summary: "An installation needs reauthorization: the user must install the app again; its jobs are dead-lettered",
			Detail:  "job " + j.ID + " (" + j.Kind + ")"})
		return nil, decided(worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonNeedsReauth, Message: "the user must install the app again"})
	default:
		return nil, decided(worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonInstallationNotActive, Message: "installation status " + string(in.Status)})
	}
	ss := &Session{s: s, job: j, in: in, background: jobs.Background(j.Kind)}
	if s.Limits != nil {
		// Before any refresh: a paused company's job must not touch Pipedrive at all.
		probe, v := s.Limits.Admit(ctx, j)
		if v != nil {
			return nil, decided(*v)
		}
		ss.probe = probe
	}
	// Use refreshes a token that is not usable (the save records the use) and otherwise
	// records the use at most once per installation.UseMarkEvery: no write per job. The
	// kit's background jobs (jobs.Background) are no use of the installation: Ensure
	// refreshes a token that is not usable and records nothing, so a daily health check
	// leaves an idle installation idle.
	now := s.now()
	if !refresh.Usable(in, now) || (!ss.background && installation.NeedsUseMark(in, now)) {
		use := s.Refresher.Use
		if ss.background {
			use = s.Refresher.Ensure
		}
		res, err := use(ctx, in)
		if v := s.refreshVerdict(res, err); v != nil {
			if res.Outcome == refresh.OutcomeLeaseHeld {
				// Another instance is refreshing and nothing reached Pipedrive yet: the job
				// waits for it without spending an attempt (bounded, should the lease holder
				// never let go). After a 401 (call) the same wait is a retry: that job did call.
				v.Outcome, v.Bounded = worker.OutcomeDeferred, true
			}
			return nil, decided(*v)
		}
		ss.in = res.Installation
	}
	return ss, nil
}

// Installation is the installation as the session currently uses it (after any refresh).
func (ss *Session) Installation() installation.Installation { return ss.in }

// Do performs method path (relative to the installation's api_domain) with body through Call,
// pacing it to the window of its kind (search or not) with every answer's rate-limit headers.
// For a job that is not Repeatable its claim is marked first (markCalling).
func (ss *Session) Do(ctx context.Context, method, path string, body []byte) (pdapi.Response, error) {
	var resp pdapi.Response
	err := ss.call(ctx, method, path, func(in installation.Installation) error {
		var err error
		resp, err = ss.s.API.Do(ctx, method, in.APIDomain, path, in.AccessToken, body)
		ss.header = resp.Header
		return err
	})
	return resp, err
}

// DoUnrepeatable is Do for one call that must not be repeated whatever its job says (an app's
// POST not marked retry-safe): the job's claim is marked before it is sent (markCalling), so a
// run that dies during it leaves the job to end as outcome_unknown.
func (ss *Session) DoUnrepeatable(ctx context.Context, method, path string, body []byte) (pdapi.Response, error) {
	ss.unrepeatable = true
	defer func() { ss.unrepeatable = false }()
	return ss.Do(ctx, method, path, body)
}

// Call runs call with the session's current tokens. A 401 (pderrors.RefreshAndRetry) refreshes
// the tokens once per session (unless another process already did) and runs call again; a
// second 401 dead-letters the job and alerts. A pause decision (daily budget, 402, feature
// capping, 415) pauses the company and defers the job; other failures become the verdict
// their pderrors.Decision asks for, alerting when it says so. With Sessions.Limits each run of
// call is paced to the token's burst window first. The error is a *Decided; nil means call
// succeeded.
func (ss *Session) Call(ctx context.Context, call func(in installation.Installation) error) error {
	return ss.call(ctx, "", "", call)
}

// call is Call for a call of method to path ("" when unknown: paced as a non-search call,
// costed as a change).
func (ss *Session) call(ctx context.Context, method, path string, call func(in installation.Installation) error) error {
	v, err := ss.attempt(ctx, method, path, call)
	if v != nil {
		return decided(*v)
	}
	if err == nil {
		ss.succeeded(ctx)
		return nil
	}
	d := pderrors.DecisionOf(err)
	if d.Action != pderrors.RefreshAndRetry {
		return ss.failure(ctx, err)
	}
	if !ss.refreshedAfter401 {
		ss.refreshedAfter401 = true
		rejected := ss.s.Refresher.RefreshRejected
		if ss.background {
			rejected = ss.s.Refresher.RefreshRejectedQuietly
		}
		res, rerr := rejected(ctx, ss.in.ID, ss.in.AccessToken)
		if v := ss.s.refreshVerdict(res, rerr); v != nil {
			return decided(*v)
		}
		ss.in = res.Installation
		if v, err = ss.attempt(ctx, method, path, call); v != nil {
			return decided(*v)
		}
		if err == nil {
			ss.succeeded(ctx)
			return nil
		}
		if d = pderrors.DecisionOf(err); d.Action != pderrors.RefreshAndRetry {
			return ss.failure(ctx, err)
		}
	}
	// Pipedrive rejects a token it has just issued: the grant is broken in a way a refresh
	// does not fix (revoked, or a different user's). A person must look.
	ss.s.Alerts.Notify(ctx, alerts.Alert{Reason: ReasonUnauthorizedAfterRefresh, Severity: alerts.SeverityWarning,
		CompanyID: ss.job.CompanyID, UserID: ss.job.UserID,
		Summary: "Pipedrive answered 401 to a freshly refreshed access token; the job was dead-lettered",
		Detail:  jobDetail(ss.job, d)})
	return decided(worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonUnauthorizedAfterRefresh, Status: d.Status, Message: d.Message, Err: err})
}

// attempt runs call once, paced by Sessions.Limits: v is a deferral when the token's window
// has no room within the wait allowed.
func (ss *Session) attempt(ctx context.Context, method, path string, call func(in installation.Installation) error) (v *worker.Verdict, err error) {
	ss.header = nil
	l := ss.s.Limits
	if l == nil {
		if v := ss.markCalling(ctx); v != nil {
			return v, nil
		}
		return nil, call(ss.in)
	}
	done, v := l.Acquire(ctx, ss.job, method, path)
	if v != nil {
		return v, nil
	}
	if v := ss.markCalling(ctx); v != nil {
		done(nil, pderrors.Decision{})
		return v, nil
	}
	err = call(ss.in)
	done(ss.header, pderrors.DecisionOf(err))
	return nil, err
}

// markCalling marks the job's claim (worker.MarkCalling) just before a call of a job that is
// not Repeatable is sent, after any refresh and pacing wait: a worker that dies from then on
// leaves the job to be dead-lettered as outcome_unknown, not sent again. A mark that cannot be
// written retries the job without calling.
func (ss *Session) markCalling(ctx context.Context) *worker.Verdict {
	if Repeatable(ss.job) && !ss.unrepeatable {
		return nil
	}
	if err := worker.MarkCalling(ctx); err != nil {
		return &worker.Verdict{Outcome: worker.OutcomeRetry, Reason: worker.ReasonClaimFailed, Err: err}
	}
	return nil
}

// succeeded notes a successful call: a probe's success lifts its company's pause, and an
// answer saying the budget is now spent pauses the company before the next call is refused.
func (ss *Session) succeeded(ctx context.Context) {
	l := ss.s.Limits
	if l == nil {
		return
	}
	if ss.probe {
		ss.probe = false
		l.Lift(ctx, ss.job)
	}
	if pderrors.RateLimitOf(ss.header).BudgetSpent() {
		l.Pause(ctx, ss.job, pderrors.Decision{Action: pderrors.Pause, Reason: pderrors.ReasonDailyBudget, Alert: true, Status: http.StatusOK,
			Message: "x-daily-ratelimit-token-remaining: 0"})
	}
}

// failure turns a failed call into the verdict its Decision asks for, alerting when a person
// must act.
func (ss *Session) failure(ctx context.Context, err error) error {
	d := pderrors.DecisionOf(err)
	if d.Action == pderrors.Pause {
		if ss.s.Limits != nil {
			v := ss.s.Limits.Pause(ctx, ss.job, d)
			v.Status, v.Err = d.Status, err
			return decided(v)
		}
		// No gate to record it in: this job waits a probe interval; the publisher's dedupe
		// keeps the alerts of its siblings down.
		ss.s.Alerts.Notify(ctx, alertFor(ss.job, d))
		wait := d.RetryAfter
		if wait <= 0 {
			wait = DefaultProbeInterval
		}
		v := pausedVerdict(string(d.Reason), wait)
		v.Status, v.Err = d.Status, err
		return decided(*v)
	}
	if d.Alert {
		ss.s.Alerts.Notify(ctx, alertFor(ss.job, d))
	}
	return decided(callVerdict(err))
}

// callVerdict is the verdict for a failed call: retry when its Decision says so (after the
// server's hint), else dead-letter (DeadLetter, and Reauthorize, which an API answer never
// gives: retrying cannot help).
func callVerdict(err error) worker.Verdict {
	d := pderrors.DecisionOf(err)
	v := worker.Verdict{Reason: string(d.Reason), Status: d.Status, Message: d.Message, Err: err}
	if d.Action == pderrors.Retry {
		v.Outcome, v.RetryAfter = worker.OutcomeRetry, d.RetryAfter
	} else {
		v.Outcome = worker.OutcomeDeadLettered
	}
	return v
}

// refreshVerdict is nil when a refresh left usable tokens in res.Installation, else the verdict
// for the job.
func (s *Sessions) refreshVerdict(res refresh.Result, err error) *worker.Verdict {
	v := &worker.Verdict{Message: "token refresh: " + res.Reason, Err: err}
	switch res.Outcome {
	case refresh.OutcomeRefreshed, refresh.OutcomeFresh:
		if res.Installation.AccessToken != "" {
			return nil
		}
		v.Outcome, v.Reason = worker.OutcomeRetry, ReasonRefreshFailed
	case refresh.OutcomeLeaseHeld:
		v.Outcome, v.Reason, v.RetryAfter = worker.OutcomeRetry, ReasonRefreshInProgress, s.refreshBusyDelay()
	case refresh.OutcomeNeedsReauth:
		// The refresher marked the installation and alerted.
		v.Outcome, v.Reason, v.Message = worker.OutcomeDeadLettered, ReasonNeedsReauth, "Pipedrive rejected the refresh token: the user must install the app again"
	case refresh.OutcomeNotActive:
		v.Outcome, v.Reason = worker.OutcomeDeadLettered, ReasonInstallationNotActive
	case refresh.OutcomeNotFound:
		v.Outcome, v.Reason = worker.OutcomeDeadLettered, ReasonInstallationNotFound
	default:
		// retry_later, failed, skipped: the refresher recorded it; try the job when the
		// refresh is due again.
		v.Outcome, v.Reason = worker.OutcomeRetry, ReasonRefreshFailed
		if !res.RetryAt.IsZero() {
			v.RetryAfter = max(res.RetryAt.Sub(s.now()), 0)
		}
	}
	return v
}

// alertSummaries explain the API decisions that alert.
var alertSummaries = map[pderrors.Reason]string{
	pderrors.ReasonMalformedAuthHeader: "Pipedrive rejected the worker's Authorization header (a bug in the worker)",
	pderrors.ReasonScopeMismatch:       "The installation lacks the scope a job needs: the user must reinstall the app",
	pderrors.ReasonGone:                "A job calls a retired Pipedrive endpoint (410): the code must change",
	pderrors.ReasonWebhookLimit:        "The user has reached Pipedrive's webhook limit for this app",
	pderrors.ReasonDailyBudget:         "The company's daily Pipedrive API budget is spent: its jobs wait until it resets",
	pderrors.ReasonUnexpected:          "Pipedrive answered a job with something the worker cannot use",
	pdapi.ReasonUntrustedAPIDomain:     "An installation's stored api_domain is not trusted; its jobs are dead-lettered",
}

// alertFor is the alert for a call decision: one per reason and installation (the Publisher
// de-duplicates).
func alertFor(j jobs.Job, d pderrors.Decision) alerts.Alert {
	summary, ok := alertSummaries[d.Reason]
	if !ok {
		summary = "A Pipedrive API call needs a look (" + string(d.Reason) + ")"
	}
	sev := alerts.SeverityWarning
	switch d.Reason {
	case pderrors.ReasonMalformedAuthHeader, pderrors.ReasonGone, pdapi.ReasonUntrustedAPIDomain:
		sev = alerts.SeverityCritical // our code or data is wrong for every installation
	}
	return alerts.Alert{Reason: string(d.Reason), Severity: sev, CompanyID: j.CompanyID, UserID: j.UserID,
		Summary: summary, Detail: jobDetail(j, d)}
}

// jobDetail describes a job and a decision without a query string, token or body.
func jobDetail(j jobs.Job, d pderrors.Decision) string {
	s := "job " + j.ID + " (" + j.Kind
	if j.Kind == jobs.KindAPICall {
		s += " " + j.Method + " " + route(j.Path)
	}
	s += ")"
	if d.Status != 0 {
		s += ": HTTP " + strconv.Itoa(d.Status)
	}
	if d.Message != "" {
		s += ": " + d.Message
	}
	return s
}

// route is a path without its query string, which may carry filters or ids.
func route(path string) string {
	r, _, _ := strings.Cut(path, "?")
	return r
}

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sessions) refreshBusyDelay() time.Duration {
	if s.RefreshBusyDelay > 0 {
		return s.RefreshBusyDelay
	}
	return DefaultRefreshBusyDelay
}
