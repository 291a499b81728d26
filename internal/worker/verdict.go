package worker

import (
	"encoding/json"
	"math"
	"time"
)

// Outcome is what the engine did with one job. The values are stable strings, logged as
// "action" and returned in Result.Outcome.
type Outcome string

// The outcomes.
const (
	// OutcomeSucceeded: the runner did the work. The job's claim is marked done, so a repeat
	// within Config.ClaimTTL is a duplicate.
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomeSkipped: the runner found nothing to do.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeDuplicate: a job with this ID already succeeded; the runner was not called.
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeDeferred: the job was not attempted and waits: NotBefore is in the future,
	// another delivery holds its claim or lock, the invocation had too little time left, or the
	// runner deferred it before reaching the remote service (its RetryAfter says how long).
	// From SQS a copy of the message was sent again with a delay (at most 15 minutes; it comes
	// back and is looked at again) carrying the job's attempts so far, and the original was
	// acknowledged only once the copy was sent: the wait neither spends nor forgets an
	// attempt. A direct caller should invoke again after RetryAfter.
	OutcomeDeferred Outcome = "deferred"
	// OutcomeRetry: an attempt failed transiently (or a deferral's copy could not be sent).
	// From SQS the message is reported as a batch item failure and hidden for RetryAfter,
	// which spends a receive; a direct caller should invoke again after RetryAfter.
	OutcomeRetry Outcome = "retry"
	// OutcomeDeadLettered: retrying cannot help. The job was sent to the dead-letter queue with
	// its reason (and, from SQS, acknowledged); a person was alerted when one must act.
	OutcomeDeadLettered Outcome = "dead_lettered"
)

// outcomeRejected is logged for a direct payload that is not a job: it goes nowhere.
const outcomeRejected Outcome = "rejected"

// Reasons of the engine's own decisions. Runners add their own (a Pipedrive runner uses
// pderrors reasons for Pipedrive's answers).
const (
	ReasonInvalidJob       = "invalid_job"
	ReasonNotBefore        = "not_before"
	ReasonNotBeforeTooFar  = "not_before_too_far"
	ReasonDuplicate        = "already_done"
	ReasonInProgress       = "in_progress"
	ReasonDeadline         = "deadline"
	ReasonClaimFailed      = "claim_failed"
	ReasonRetriesExhausted = "retries_exhausted"
	// ReasonDeferralsExhausted dead-letters a job deferred more than Config.MaxDeferrals times
	// for an obstacle that should have cleared by itself (Verdict.Bounded).
	ReasonDeferralsExhausted = "deferrals_exhausted"
	ReasonDeadLetterFailed   = "dead_letter_failed"
	ReasonRequeueFailed      = "requeue_failed"
	ReasonPanic              = "panic"
	// ReasonOutcomeUnknown dead-letters a job whose call must not be repeated and may have been
	// carried out: its answer was lost (a timeout, a broken connection, a 5xx after the work),
	// or the run that made it died (its claim, marked by MarkCalling, was taken over). A person
	// checks the remote service, then redrives that job by name or drops it.
	ReasonOutcomeUnknown = "outcome_unknown"
)

// Verdict is a runner's decision for one job, and what the log, the dead-letter attributes and
// the Result report of it.
type Verdict struct {
	Outcome Outcome
	// Reason is short and stable ("ok", "not_found", "in_progress"): logged, a dead letter's
	// reason attribute, Result.Reason.
	Reason string
	// Status is the remote HTTP status that decided, 0 if none.
	Status int
	// Message is a short explanation, safe to show to the caller.
	Message string
	// RetryAfter is the wait before the next attempt (OutcomeRetry, OutcomeDeferred). Zero on
	// a retry means Config.Backoff decides.
	RetryAfter time.Duration
	// Bounded marks a deferral that waits for an obstacle expected to clear by itself within
	// minutes (a claim, lock or lease held by another instance, an invocation short of time):
	// the engine counts such deferrals of a job and dead-letters it past Config.MaxDeferrals
	// (ReasonDeferralsExhausted), so a holder that never lets go cannot circulate it forever.
	// Pauses and NotBefore, bounded in their own ways, leave it unset.
	Bounded bool
	// Body is the work's answer for a direct caller (OutcomeSucceeded only); BodyOmitted says
	// it was left out (too large, not JSON).
	Body        json.RawMessage
	BodyOmitted bool
	// Err is logged and becomes the dead letter's error attribute; it must never hold a secret.
	Err error
	// claim is the job's claim kept for an outcome_unknown dead letter: released only once the
	// dead letter is sent (see Engine.apply).
	claim *heldClaim
}

// heldClaim names a job's claim.
type heldClaim struct{ key, owner string }

// Result is the answer to a direct invocation: what happened to the job. As JSON:
// {"job_id","kind","outcome","reason","status","message","retry_after_seconds","body",
// "body_omitted"}, empty fields left out.
type Result struct {
	JobID   string  `json:"job_id"`
	Kind    string  `json:"kind"`
	Outcome Outcome `json:"outcome"`
	// Reason is the runner's reason ("ok", "not_found", "rate_limited", …) or one of the
	// engine's Reason… constants.
	Reason string `json:"reason"`
	// Status is the remote HTTP status, 0 when no answer decided.
	Status int `json:"status,omitempty"`
	// Message is the remote error message or a short explanation; safe to show.
	Message string `json:"message,omitempty"`
	// RetryAfter is how long to wait before invoking again (OutcomeRetry, OutcomeDeferred);
	// encoded as whole seconds, rounded up, in retry_after_seconds.
	RetryAfter time.Duration `json:"-"`
	// Body is the runner's answer (OutcomeSucceeded only).
	Body json.RawMessage `json:"body,omitempty"`
	// BodyOmitted is set when the runner left a body out (too large or not JSON).
	BodyOmitted bool `json:"body_omitted,omitempty"`
}

// MarshalJSON encodes RetryAfter as retry_after_seconds.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		RetryAfterSeconds int64 `json:"retry_after_seconds,omitempty"`
	}{plain(r), CeilSeconds(r.RetryAfter)})
}

// InvalidJobError is the error of a direct invocation whose payload is not a valid job. Lambda
// reports its type name as errorType; the message says what is wrong with the payload.
type InvalidJobError struct {
	// Op prefixes the message (the engine's Name, e.g. "apicall").
	Op string
	// Err wraps jobs.ErrInvalidJob.
	Err error
}

// Error is "Op: " followed by Err's text.
func (e *InvalidJobError) Error() string {
	if e.Op == "" {
		return e.Err.Error()
	}
	return e.Op + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *InvalidJobError) Unwrap() error { return e.Err }

// CeilSeconds is d in whole seconds, rounded up; 0 for d <= 0. Retry delays are logged and
// returned in this form.
func CeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}
