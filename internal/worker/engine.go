// Package worker is the job engine of the jobs queue: it takes an SQS batch (or one job given
// directly), runs each job once per job ID through the Runner registered for its kind, and
// carries the Runner's Verdict out on the queues: acknowledged, retried after a delay
// (ChangeMessageVisibility), deferred until NotBefore, or dead-lettered with its reason. It
// knows nothing of Pipedrive: a kind of work is a Runner that plugs in, as an http.Handler
// plugs into a ServeMux.
package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// Runner does the work of one kind of job. Run is called at most once at a time per job ID
// (the engine holds the job's claim), with a context that ends before the invocation's deadline
// by a reserve. It returns the decision; a panic is recovered as a retry. Runners must be safe
// for concurrent use: a batch runs several jobs at once.
type Runner interface {
	Run(ctx context.Context, j jobs.Job) Verdict
}

// Checker is implemented by a Runner whose kind needs fields beyond the common ones (see
// jobs.KindCheck): a job failing Check is invalid and dead-lettered without running.
type Checker interface {
	Check(j jobs.Job) []string
}

// Exclusive is implemented by a Runner whose jobs must not run at the same time when they share
// a key, even with different IDs (two registrations for one installation): while one runs,
// the others are retried when its lease ends. "" means no exclusion for that job.
type Exclusive interface {
	ExclusiveKey(j jobs.Job) string
}

// LogAttrer is implemented by a Runner that adds attributes to a job's decision log event. They
// must never hold a secret or customer data (a route, not a query string).
type LogAttrer interface {
	LogAttrs(j jobs.Job) []slog.Attr
}

// Claims makes a job delivered more than once run once; *tokenstore.Store satisfies it.
// ClaimWork returns tokenstore.ErrWorkClaimed with the live claim to every caller but the
// first (and a crashed owner's successor).
type Claims interface {
	ClaimWork(ctx context.Context, key, owner string, lease, ttl time.Duration) (tokenstore.WorkClaim, error)
	CompleteWork(ctx context.Context, key, owner string, ttl time.Duration) error
	ReleaseWork(ctx context.Context, key, owner string) error
	// MarkWorkCalling records on owner's live claim that a call which must not be repeated is
	// starting (see MarkCalling); an error means the call must not be made.
	MarkWorkCalling(ctx context.Context, key, owner string) error
}

// Queue is the part of SQS the engine uses; *sqs.Client satisfies it.
type Queue interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Defaults for zero Config fields.
const (
	// DefaultClaimLease outlives one run (the function's 30 s timeout) and ends before the
	// queue's 180 s visibility timeout brings a crashed run's message back, so that delivery
	// can take the claim over. An invocation with a deadline leases only until that deadline
	// plus ClaimLeaseMargin, when that is sooner: past it the run cannot be alive.
	DefaultClaimLease = 2 * time.Minute
	// ClaimLeaseMargin is added to the invocation's remaining time for its claims' lease: the
	// clocks of two instances may differ by that much.
	ClaimLeaseMargin = 10 * time.Second
	// DefaultClaimTTL is how long a done job is remembered: duplicates from webhooks and
	// retried producers arrive within minutes, not days.
	DefaultClaimTTL = 24 * time.Hour
	// DefaultConcurrency is how many jobs of one SQS batch run at once.
	DefaultConcurrency = 5
	// DefaultDeadlineReserve: a job is not started with less time left before the
	// invocation's deadline (one call, a refresh and the bookkeeping take about that long).
	DefaultDeadlineReserve = 5 * time.Second
	// DefaultMaxDefer bounds how far in the future NotBefore may lie: the queue keeps messages
	// four days, and a date further out is a producer's bug.
	DefaultMaxDefer = 72 * time.Hour
	// DefaultMaxDeferrals bounds a job's bounded deferrals (Verdict.Bounded). Each waits until
	// the obstacle can be gone (a claim's or lock's lease end, at most DefaultClaimLease; the
	// refresh lease, 60 s, looked at every 5 s; a second for a short invocation), so a few
	// suffice; 50 leave room for a queue of exclusive jobs and a crashed refresher, and still
	// end a job that meets a new holder every time within hours.
	DefaultMaxDeferrals = 50
)

// settleTime is kept free before the invocation's deadline (at most half of DeadlineReserve)
// for what follows a job's work: settling its claim, an alert, the dead-letter queue or the
// visibility change, and the batch's answer.
const settleTime = 2 * time.Second

// bookkeepingTimeout bounds each write after the work (claim, queue), detached from the
// invocation's cancellation.
const bookkeepingTimeout = 5 * time.Second

// MaxVisibility is the longest a retried message is hidden. SQS allows 12 hours from the
// receive; the margin covers the time between the receive and this invocation's call.
const MaxVisibility = 12*time.Hour - 5*time.Minute

// DefaultBackoff is the wait before retry attempt n+1 when the runner gave no hint: 30 s, 1 min,
// 2 min, … at most an hour. n counts the job's attempts so far, this one included.
func DefaultBackoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 8 { // 30 s << 7 is past the cap; avoid overflowing the shift
		return time.Hour
	}
	return min(30*time.Second<<(n-1), time.Hour)
}

// Config is the engine's behaviour, as values.
type Config struct {
	// JobsQueueURL is the queue SQS events come from: retried messages are hidden there
	// (ChangeMessageVisibility) and deferred ones sent again. Required for SQS events.
	JobsQueueURL string
	// DeadLetterQueueURL receives dead-lettered jobs with their reason. Required.
	DeadLetterQueueURL string
	// MaxReceives is the jobs queue's maxReceiveCount (template.yaml, passed to the function
	// as JOBS_MAX_RECEIVES). A job still to be retried at that attempt (its receives, plus
	// those of its earlier messages when it was deferred) is dead-lettered here, with its
	// reason, instead of being moved by SQS's redrive without one. Zero: never (SQS's redrive
	// does it, without a reason).
	MaxReceives int
	// Backoff is the retry delay when the runner gave no hint, by attempt (the job's Attempt
	// plus its attempts on the queue: SQS's ApproximateReceiveCount, plus those of its earlier
	// messages when it was deferred); DefaultBackoff when nil.
	Backoff func(attempt int) time.Duration
	// ClaimLease and ClaimTTL: see DefaultClaimLease and DefaultClaimTTL.
	ClaimLease, ClaimTTL time.Duration
	// Concurrency: see DefaultConcurrency.
	Concurrency int
	// DeadlineReserve: see DefaultDeadlineReserve.
	DeadlineReserve time.Duration
	// MaxDefer: see DefaultMaxDefer.
	MaxDefer time.Duration
	// MaxDeferrals is how many bounded deferrals (Verdict.Bounded) a job from SQS may have;
	// the next one dead-letters it with ReasonDeferralsExhausted and alerts. They are counted
	// apart from attempts, which they do not spend. See DefaultMaxDeferrals.
	MaxDeferrals int
	// Now is the clock for NotBefore and claims; time.Now when nil.
	Now func() time.Time
}

// Engine runs jobs from the jobs queue (SQS events) or from a direct invocation through the
// Runner of each job's kind. Runners, Claims and Queue are required. Safe for concurrent use;
// the fields must not change once it runs.
type Engine struct {
	// Name names the engine in claim keys (Name#job-id), errors and logs, e.g. "apicall".
	Name string
	// Runners maps each job kind the engine accepts to its Runner. A job of another kind is
	// invalid: dead-lettered from SQS, an *InvalidJobError for a direct caller.
	Runners map[string]Runner
	// Claims keeps one run per job ID (see Config.ClaimLease and ClaimTTL).
	Claims Claims
	// Queue hides retried messages, sends deferred ones again and feeds the dead-letter queue.
	Queue Queue
	// Alerts is told when a person must act (a malformed job, retries exhausted, a dead letter
	// that could not be sent).
	Alerts alerts.Notifier
	// Log receives one JSON event per job decision; nil discards.
	Log *slog.Logger
	// Metrics counts each job decision (metrics.Jobs by outcome and reason, RateLimited,
	// Pauses); nil counts nothing.
	Metrics *metrics.Emitter
	Config  Config
}

// kinds are the kinds the engine accepts, with their runners' checks.
func (e *Engine) kinds() map[string]jobs.KindCheck {
	out := make(map[string]jobs.KindCheck, len(e.Runners))
	for kind, r := range e.Runners {
		var check jobs.KindCheck
		if c, ok := r.(Checker); ok {
			check = c.Check
		}
		out[kind] = check
	}
	return out
}

func (e *Engine) now() time.Time {
	if e.Config.Now != nil {
		return e.Config.Now()
	}
	return time.Now()
}

func (e *Engine) logger() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

func (e *Engine) backoff(attempt int) time.Duration {
	if e.Config.Backoff != nil {
		return e.Config.Backoff(attempt)
	}
	return DefaultBackoff(attempt)
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (e *Engine) concurrency() int {
	if e.Config.Concurrency > 0 {
		return e.Config.Concurrency
	}
	return DefaultConcurrency
}
func (e *Engine) claimLease() time.Duration {
	return orDuration(e.Config.ClaimLease, DefaultClaimLease)
}
func (e *Engine) claimTTL() time.Duration { return orDuration(e.Config.ClaimTTL, DefaultClaimTTL) }
func (e *Engine) deadlineReserve() time.Duration {
	return orDuration(e.Config.DeadlineReserve, DefaultDeadlineReserve)
}
func (e *Engine) maxDefer() time.Duration { return orDuration(e.Config.MaxDefer, DefaultMaxDefer) }
func (e *Engine) maxDeferrals() int {
	if e.Config.MaxDeferrals > 0 {
		return e.Config.MaxDeferrals
	}
	return DefaultMaxDeferrals
}
