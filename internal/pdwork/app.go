package pdwork

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// Reasons of the app's runners.
const (
	// ReasonAppDone: the app's job function or hook returned nil.
	ReasonAppDone = "done"
	// ReasonAppFailed: the app's code returned an error that is not a Pipedrive call's: retried
	// with backoff, dead-lettered with this reason after the last receive.
	ReasonAppFailed = "app_failed"
)

// EventHandler is the app's handler of webhook events (the public package pdkit adapts the
// app's handlers to it). It returns nil when the event is handled, the Client's error (wrapped
// with %w) when a call failed, any other error to have the event retried.
type EventHandler interface {
	HandleEvent(ctx context.Context, ev webhook.Event, c *Client) error
}

// EventHandlerFunc adapts a function to an EventHandler.
type EventHandlerFunc func(ctx context.Context, ev webhook.Event, c *Client) error

// HandleEvent calls f.
func (f EventHandlerFunc) HandleEvent(ctx context.Context, ev webhook.Event, c *Client) error {
	return f(ctx, ev, c)
}

// JobFunc runs one of the app's jobs (and the install hook) with a Client for its
// installation. Its error is decided as an EventHandler's.
type JobFunc func(ctx context.Context, j jobs.Job, c *Client) error

// Client acts for the installation of one job: it calls Pipedrive through the job's Session
// (opened at the first call, so work that calls nothing reads and refreshes nothing) and
// queues jobs for the same installation. Its errors are *Decided. Not safe for concurrent use.
type Client struct {
	sessions *Sessions
	job      jobs.Job
	jobs     Enqueuer
	ss       *Session
	status   int // the last answer's status
}

// NewClient is the Client of job j; enqueue may be nil (Enqueue then fails).
func NewClient(s *Sessions, j jobs.Job, enqueue Enqueuer) *Client {
	return &Client{sessions: s, job: j, jobs: enqueue}
}

// Installation is the installation the client acts for.
func (c *Client) Installation() installation.ID {
	return installation.ID{CompanyID: c.job.CompanyID, UserID: c.job.UserID}
}

// Do performs method path (relative to the installation's api_domain) with body through the
// installation's Session: the token refreshed when it expires and once after a 401, calls
// paced to Pipedrive's windows, a paused company's work deferred, and a failure turned into the
// verdict its pderrors.Decision asks for (retry at Pipedrive's time, dead letter, alert). A
// POST not marked retrySafe whose outcome is unknown (a timeout, a lost answer, a 5xx other
// than 503) is dead-lettered as outcome_unknown with an alert instead of being retried: it
// may have created something; so is one whose run died during it (its claim is marked first,
// and the run that takes the job over ends it as outcome_unknown).
func (c *Client) Do(ctx context.Context, method, path string, body []byte, retrySafe bool) (pdapi.Response, error) {
	if c.ss == nil {
		ss, err := c.sessions.Open(ctx, c.job)
		if err != nil {
			return pdapi.Response{}, err
		}
		c.ss = ss
	}
	do := c.ss.Do
	if method == http.MethodPost && !retrySafe {
		do = c.ss.DoUnrepeatable // a crash during it must not lead to a second POST
	}
	resp, err := do(ctx, method, path, body)
	if err == nil {
		c.status = resp.Status
		return resp, nil
	}
	v := VerdictOf(err)
	call := jobs.Job{ID: c.job.ID, Kind: jobs.KindAPICall, CompanyID: c.job.CompanyID, UserID: c.job.UserID, Method: method, Path: path, RetrySafe: retrySafe}
	if v.Outcome == worker.OutcomeRetry && method == http.MethodPost && OutcomeUnknown(call, pderrors.Reason(v.Reason)) {
		c.sessions.Alerts.Notify(ctx, alerts.Alert{Reason: ReasonOutcomeUnknown, Severity: alerts.SeverityWarning,
			CompanyID: c.job.CompanyID, UserID: c.job.UserID,
			Summary: "An app's POST to Pipedrive may or may not have been carried out; its job was dead-lettered, not run again",
			Detail:  "job " + c.job.ID + " (" + c.job.Kind + ", POST " + route(path) + "): " + v.Reason + "; check Pipedrive, then redrive or drop it"})
		return resp, decided(worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonOutcomeUnknown, Status: v.Status,
			Message: "the call's outcome is unknown (" + v.Reason + "); not run again (mark calls that may be repeated retry-safe)", Err: v.Err})
	}
	return resp, err
}

// ErrNoEnqueuer is returned by Enqueue when the client was built without an Enqueuer.
var ErrNoEnqueuer = errors.New("pdwork: this client cannot queue jobs")

// Enqueue queues j (which must be of the client's installation).
func (c *Client) Enqueue(ctx context.Context, j jobs.Job) error {
	if c.jobs == nil {
		return ErrNoEnqueuer
	}
	if j.CompanyID != c.job.CompanyID || j.UserID != c.job.UserID {
		return errors.New("pdwork: a job queued by a handler must be of the handler's installation")
	}
	return c.jobs.Enqueue(ctx, j)
}

// appVerdict is the verdict of the app's code that returned err through client c: succeeded
// when nil, the Session's verdict for a failed call (an installation gone is skipped: nobody is
// left to act for), retry with backoff for any other error.
func appVerdict(err error, c *Client, done string) worker.Verdict {
	if err == nil {
		return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: done, Status: c.status}
	}
	var d *Decided
	if !errors.As(err, &d) {
		return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: ReasonAppFailed, Err: err}
	}
	v := d.Verdict
	switch v.Reason {
	case ReasonInstallationUninstalled, ReasonInstallationNotFound:
		v.Outcome = worker.OutcomeSkipped
	}
	if v.Err == nil || !errors.Is(err, v.Err) {
		v.Err = err // keep the app's wrapping for the log and the dead letter
	}
	return v
}

// AppJobs runs one of the app's job kinds (and app_install, the install hook): Func with a
// Client for the job's installation. Sessions and Func are required; Jobs lets the function
// queue more jobs. Safe for concurrent use when Func is.
type AppJobs struct {
	Sessions *Sessions
	Jobs     Enqueuer
	Func     JobFunc
	// UseReserve lets the kind's calls spend the company's budget reserve (jobs.Job.UseReserve)
	// whatever its jobs say: the kind decides, not each message.
	UseReserve bool
}

var (
	_ worker.Runner    = (*AppJobs)(nil)
	_ worker.LogAttrer = (*AppJobs)(nil)
)

// Run runs the app's function: see appVerdict for the decision.
func (r *AppJobs) Run(ctx context.Context, j jobs.Job) worker.Verdict {
	j.UseReserve = j.UseReserve || r.UseReserve
	c := NewClient(r.Sessions, j, r.Jobs)
	return appVerdict(r.Func(ctx, j, c), c, ReasonAppDone)
}

// LogAttrs names the app's key, never the payload.
func (*AppJobs) LogAttrs(j jobs.Job) []slog.Attr {
	if k := jobs.AppKey(j); k != "" {
		return []slog.Attr{slog.String("app_key", k)}
	}
	return nil
}

// UninstallFunc is the app's uninstall hook: the installation is gone (its tokens deleted), so
// it gets no Pipedrive client.
type UninstallFunc func(ctx context.Context, id installation.ID) error

// AppUninstall runs app_uninstall jobs: the app's hook, without a Session. Func is required.
type AppUninstall struct {
	Func UninstallFunc
}

var _ worker.Runner = (*AppUninstall)(nil)

// Run calls the hook: succeeded when it returns nil, retried with backoff otherwise.
func (r *AppUninstall) Run(ctx context.Context, j jobs.Job) worker.Verdict {
	if err := r.Func(ctx, installation.ID{CompanyID: j.CompanyID, UserID: j.UserID}); err != nil {
		return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: ReasonAppFailed, Err: err}
	}
	return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: ReasonAppDone}
}
