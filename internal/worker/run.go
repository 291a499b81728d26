package worker

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/deadline"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// RunBatch runs the jobs of an SQS batch (Config.Concurrency at a time) and returns the ids of
// the messages SQS must deliver again (those whose outcome is OutcomeRetry). Every other
// message is acknowledged: done, skipped, duplicate, deferred (sent again with a delay) or
// dead-lettered (sent to the dead-letter queue with its reason first).
func (e *Engine) RunBatch(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	retry := make([]bool, len(ev.Records))
	sem := make(chan struct{}, e.concurrency())
	var wg sync.WaitGroup
	for i, rec := range ev.Records {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d := delivery{
				body: rec.Body, queued: true, messageID: rec.MessageId, receipt: rec.ReceiptHandle,
				receives: receiveCount(rec.Attributes), attrs: rec.MessageAttributes,
				earlier: countAttr(rec.MessageAttributes, jobs.AttrEarlierAttempts), deferrals: countAttr(rec.MessageAttributes, jobs.AttrDeferrals),
			}
			retry[i] = e.run(ctx, d).Outcome == OutcomeRetry
		})
	}
	wg.Wait()
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for i, r := range retry {
		if r {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp
}

// RunJob runs one job given as JSON and returns what happened. It does not wait for retries:
// OutcomeRetry and OutcomeDeferred come back at once with RetryAfter. A dead-lettered job is
// sent to the dead-letter queue as from SQS. A payload that is not a valid job of a registered
// kind is an *InvalidJobError and goes nowhere: the caller has it.
func (e *Engine) RunJob(ctx context.Context, raw []byte) (Result, error) {
	j, err := jobs.ParseKinds(string(raw), e.kinds())
	if err != nil {
		e.logVerdict(ctx, delivery{}, partialJob(string(raw)), Verdict{Outcome: outcomeRejected, Reason: ReasonInvalidJob, Err: err})
		return Result{}, &InvalidJobError{Op: e.Name, Err: err}
	}
	v := e.run(ctx, delivery{body: string(raw), receives: 1})
	return Result{
		JobID: j.ID, Kind: j.Kind, Outcome: v.Outcome, Reason: v.Reason, Status: v.Status,
		Message: v.Message, RetryAfter: v.RetryAfter, Body: v.Body, BodyOmitted: v.BodyOmitted,
	}, nil
}

// delivery is one job as it arrived.
type delivery struct {
	body string
	// queued is true for an SQS message, false for a direct invocation.
	queued             bool
	messageID, receipt string
	// receives is SQS's ApproximateReceiveCount (1 for a direct invocation).
	receives int
	// earlier counts the attempts spent by the job's earlier messages, and deferrals its
	// bounded deferrals so far: the worker's counts on a copy it re-sent (0 otherwise).
	earlier, deferrals int
	attrs              map[string]events.SQSMessageAttribute
}

// attempts counts the job's attempts on the queue, this delivery included: a deferral re-sends
// a copy whose receive count starts again at 1, and the copy carries the attempts before it.
func (d delivery) attempts() int { return d.earlier + d.receives }

// run decides one delivery, carries the decision out (dead-letter queue, visibility, claim) and
// logs it.
func (e *Engine) run(ctx context.Context, d delivery) (v Verdict) {
	j := partialJob(d.body)
	defer func() {
		if p := recover(); p != nil {
			e.logPanic(ctx, j, p)
			v = e.apply(ctx, d, j, Verdict{Outcome: OutcomeRetry, Reason: ReasonPanic, Err: fmt.Errorf("panic: %v", p)})
		}
		e.logVerdict(ctx, d, j, v)
	}()
	parsed, err := jobs.ParseKinds(d.body, e.kinds())
	if err != nil {
		// Never retried: the same bytes fail the same way. Parked with the reason instead.
		e.Alerts.Notify(ctx, alerts.Alert{Reason: ReasonInvalidJob, Severity: alerts.SeverityWarning,
			Summary: "A malformed job reached the jobs queue and was dead-lettered", Detail: alerts.ErrorDetail(err)})
		return e.apply(ctx, d, j, Verdict{Outcome: OutcomeDeadLettered, Reason: ReasonInvalidJob, Message: alerts.ErrorDetail(err), Err: err})
	}
	j = parsed
	return e.apply(ctx, d, j, e.decide(ctx, d, j))
}

// ClaimKey is the claim of job j in engine name: per installation and job id, so a job of
// another installation that happens to use the same id is not taken for a duplicate, and never
// the key of a runner's exclusive lock ("<name>#lock#…").
func ClaimKey(name string, j jobs.Job) string {
	return name + "#job#" + strconv.FormatInt(j.CompanyID, 10) + ":" + strconv.FormatInt(j.UserID, 10) + "#" + j.ID
}

// decide makes the decision for a valid job, holding the job's claim while its runner works.
func (e *Engine) decide(ctx context.Context, d delivery, j jobs.Job) (v Verdict) {
	now := e.now()
	if !j.NotBefore.IsZero() && j.NotBefore.After(now) {
		return e.deferJob(j, now)
	}
	if deadline.Short(ctx, e.deadlineReserve()) {
		// Not attempted: the next invocation has the time.
		return Verdict{Outcome: OutcomeDeferred, Reason: ReasonDeadline, RetryAfter: time.Second, Bounded: true}
	}
	runner := e.Runners[j.Kind]
	key, owner := ClaimKey(e.Name, j), newOwner(d)
	lease := e.leaseFor(ctx)
	claim, err := e.Claims.ClaimWork(ctx, key, owner, lease, e.claimTTL())
	switch {
	case errors.Is(err, tokenstore.ErrWorkClaimed) && claim.State == tokenstore.WorkDone:
		return Verdict{Outcome: OutcomeDuplicate, Reason: ReasonDuplicate}
	case errors.Is(err, tokenstore.ErrWorkClaimed):
		// Another delivery is running it: look again when its lease ends, when it is done (a
		// duplicate then), released after a failure, or free to take over from a crashed owner.
		return inProgress(claim, now)
	case err != nil:
		return Verdict{Outcome: OutcomeRetry, Reason: ReasonClaimFailed, Err: err}
	}
	defer func() {
		if p := recover(); p != nil {
			e.logPanic(ctx, j, p)
			v = Verdict{Outcome: OutcomeRetry, Reason: ReasonPanic, Err: fmt.Errorf("panic: %v", p)}
		}
		if v.Outcome == OutcomeDeadLettered && v.Reason == ReasonOutcomeUnknown {
			// Kept, with its call mark, until the dead letter is sent (apply then marks it
			// done): should that fail, the next delivery takes the claim over and
			// dead-letters the job again instead of making the call a second time.
			v.claim = &heldClaim{key: key, owner: owner}
			return
		}
		e.settleClaim(ctx, j, key, owner, v)
	}()
	if claim.TookOver && claim.Calling {
		// The run that held this claim died after MarkCalling: its call may have been
		// carried out. Like a call whose answer was lost, it is not made again.
		e.Alerts.Notify(ctx, alerts.Alert{Reason: ReasonOutcomeUnknown, Severity: alerts.SeverityWarning,
			CompanyID: j.CompanyID, UserID: j.UserID,
			Summary: "A job's worker died during a call that must not be repeated; it may or may not have been carried out and was dead-lettered, not run again",
			Detail:  "job " + j.ID + " (" + j.Kind + "): check the remote service, then pdctl dlq redrive --id MESSAGE_ID if it did not happen, or drop it"})
		return Verdict{Outcome: OutcomeDeadLettered, Reason: ReasonOutcomeUnknown,
			Message: "the run that made this job's call died before its answer was recorded; not run again"}
	}
	if x, ok := runner.(Exclusive); ok {
		if k := x.ExclusiveKey(j); k != "" {
			lock := e.Name + "#lock#" + k
			held, err := e.Claims.ClaimWork(ctx, lock, owner, lease, lease)
			switch {
			case errors.Is(err, tokenstore.ErrWorkClaimed):
				return inProgress(held, now)
			case err != nil:
				return Verdict{Outcome: OutcomeRetry, Reason: ReasonClaimFailed, Err: err}
			}
			defer e.settleClaim(ctx, j, lock, owner, Verdict{Outcome: OutcomeRetry}) // released, never kept as done
		}
	}
	// Lambda ends the invocation at its deadline, and with it the answer for the whole batch:
	// the work stops early enough for the claim, the queue and the answer to come after it.
	wctx, cancel := deadline.Reserve(ctx, min(settleTime, e.deadlineReserve()/2))
	defer cancel()
	wctx = context.WithValue(wctx, callMarkKey{}, &callMark{mark: func(ctx context.Context) error {
		return e.Claims.MarkWorkCalling(ctx, key, owner)
	}})
	return runner.Run(wctx, j)
}

// leaseFor is the lease of a run's claims: Config.ClaimLease, or less when the invocation ends
// sooner (its deadline plus ClaimLeaseMargin), so that a run that died is taken over as soon
// as it surely is dead.
func (e *Engine) leaseFor(ctx context.Context) time.Duration {
	lease := e.claimLease()
	if dl, ok := ctx.Deadline(); ok {
		lease = min(lease, max(time.Until(dl), 0)+ClaimLeaseMargin)
	}
	return lease
}

// callMarkKey is the context key of a run's callMark.
type callMarkKey struct{}

// callMark marks a run's claim once (MarkCalling).
type callMark struct {
	mu     sync.Mutex
	marked bool
	mark   func(ctx context.Context) error
}

// MarkCalling is called by a Runner just before it starts a call that must not be repeated
// (one whose effect cannot be recognised afterwards, such as a POST that creates a deal). The
// engine records it in the job's claim (Claims.MarkWorkCalling), once per run: should the run
// die before it settles, the delivery that takes the claim over dead-letters the job with
// ReasonOutcomeUnknown and alerts, instead of running it again. A run that dies before
// marking is simply run again. An error means the mark could not be written (the claim was
// lost or the store failed): the call must not be made; return a retry. Outside a run of the
// engine MarkCalling does nothing.
func MarkCalling(ctx context.Context) error {
	m, ok := ctx.Value(callMarkKey{}).(*callMark)
	if !ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.marked {
		return nil
	}
	if err := m.mark(ctx); err != nil {
		return fmt.Errorf("worker: mark the job's claim before a call that must not be repeated: %w", err)
	}
	m.marked = true
	return nil
}

// inProgress defers a job whose claim (or exclusive lock) another delivery holds until that
// lease ends: not before then can the claim change hands (a crashed owner's is taken over).
func inProgress(held tokenstore.WorkClaim, now time.Time) Verdict {
	return Verdict{Outcome: OutcomeDeferred, Reason: ReasonInProgress, RetryAfter: max(held.LeaseUntil.Sub(now), time.Second), Bounded: true}
}

// settleClaim marks the claim done after success and releases it otherwise, so a redelivery
// (or an operator's redrive from the dead-letter queue) can run the job again.
func (e *Engine) settleClaim(ctx context.Context, j jobs.Job, key, owner string, v Verdict) {
	sctx, cancel := deadline.Detached(ctx, bookkeepingTimeout)
	defer cancel()
	var err error
	if v.Outcome == OutcomeSucceeded {
		err = e.Claims.CompleteWork(sctx, key, owner, e.claimTTL())
	} else {
		err = e.Claims.ReleaseWork(sctx, key, owner)
	}
	if err != nil {
		// The lease lapsed (another delivery may now run it) or the store failed: the job's
		// outcome stands, duplicates are possible.
		e.logger().LogAttrs(ctx, slog.LevelWarn, "job claim not settled", slog.String("job_id", j.ID),
			slog.String("action", string(v.Outcome)), slog.String("error", err.Error()))
	}
}

// deferJob defers a job whose NotBefore is still ahead until it is due (apply re-sends it,
// coming back every 15 minutes at most until then), or dead-letters it when that is further
// than Config.MaxDefer.
func (e *Engine) deferJob(j jobs.Job, now time.Time) Verdict {
	wait := j.NotBefore.Sub(now)
	if wait > e.maxDefer() {
		return Verdict{Outcome: OutcomeDeadLettered, Reason: ReasonNotBeforeTooFar,
			Message: fmt.Sprintf("not_before is %s ahead, more than %s", wait.Round(time.Second), e.maxDefer())}
	}
	return Verdict{Outcome: OutcomeDeferred, Reason: ReasonNotBefore, RetryAfter: wait}
}

// resend carries out the deferral v of an SQS message: a copy of it is sent again with v's
// delay (at most SQS's 15 minutes: a longer wait comes back and is deferred again), carrying
// the job's attempts so far (this receive was none) and its bounded deferrals, and only then
// is the original acknowledged. So a deferral spends no receive and forgets no attempt. If the
// copy cannot be sent, the original is retried instead (hidden for the delay and delivered
// again by SQS, spending that receive): never lost. A duplicate copy (a send whose answer was
// lost, an acknowledgement that failed) is harmless: the job's claim runs it once. A bounded
// deferral past Config.MaxDeferrals dead-letters the job instead.
func (e *Engine) resend(ctx context.Context, d delivery, j jobs.Job, v Verdict) Verdict {
	deferrals := d.deferrals
	if v.Bounded {
		deferrals++
		if limit := e.maxDeferrals(); deferrals > limit {
			// Like retries_exhausted: one alert per reason, the dead letters name the jobs.
			e.Alerts.Notify(ctx, alerts.Alert{Reason: ReasonDeferralsExhausted, Severity: alerts.SeverityWarning,
				Summary: "Jobs were deferred " + strconv.Itoa(d.deferrals) + " times without being attempted and were dead-lettered (last reason " + v.Reason + ")",
				Detail: "first seen: job " + j.ID + " (" + j.Kind + ") of company " + strconv.FormatInt(j.CompanyID, 10) +
					" user " + strconv.FormatInt(j.UserID, 10) + "; pdctl dlq peek lists them all"})
			return Verdict{Outcome: OutcomeDeadLettered, Reason: ReasonDeferralsExhausted, Status: v.Status,
				Message: "deferred " + strconv.Itoa(d.deferrals) + " times without an attempt, last: " + v.Reason + lastMessage(v.Message), Err: v.Err}
		}
	}
	// Whole seconds, rounded up: never before the obstacle can be gone.
	delay := visibilitySeconds(min(v.RetryAfter, jobs.MaxDelay))
	sctx, cancel := deadline.Detached(ctx, bookkeepingTimeout)
	defer cancel()
	attrs := copyAttributes(d.attrs)
	setCount(attrs, jobs.AttrEarlierAttempts, d.attempts()-1)
	setCount(attrs, jobs.AttrDeferrals, deferrals)
	_, err := e.Queue.SendMessage(sctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(e.Config.JobsQueueURL),
		MessageBody:       aws.String(d.body),
		DelaySeconds:      delay,
		MessageAttributes: attrs,
	})
	if err != nil {
		return Verdict{Outcome: OutcomeRetry, Reason: ReasonRequeueFailed, Status: v.Status,
			Message: "re-send (" + v.Reason + ") failed", RetryAfter: max(v.RetryAfter, time.Second), Err: err}
	}
	return v
}

// apply carries out a verdict on the queues: a deferred SQS message is sent again (resend); a
// dead-lettered job is sent to the dead-letter queue; a retried SQS message is hidden for the
// retry delay, or dead-lettered when this was its last attempt. It returns the verdict as
// carried out.
func (e *Engine) apply(ctx context.Context, d delivery, j jobs.Job, v Verdict) Verdict {
	if v.Outcome == OutcomeDeferred && d.queued {
		v = e.resend(ctx, d, j, v)
	}
	if v.Outcome == OutcomeRetry && v.RetryAfter <= 0 {
		v.RetryAfter = e.backoff(j.Attempt + d.attempts())
	}
	if v.Outcome == OutcomeRetry && d.queued && e.Config.MaxReceives > 0 && d.attempts() >= e.Config.MaxReceives {
		// SQS would move it to the dead-letter queue at the next receive, without a reason.
		// One alert per reason, not per installation: an outage exhausts many jobs of many
		// installations at once, and one page says it all (the dead letters name them).
		e.Alerts.Notify(ctx, alerts.Alert{Reason: ReasonRetriesExhausted, Severity: alerts.SeverityWarning,
			Summary: "Jobs kept failing and were dead-lettered after " + strconv.Itoa(d.attempts()) + " attempts (last reason " + v.Reason + ")",
			Detail: "first seen: job " + j.ID + " (" + j.Kind + ") of company " + strconv.FormatInt(j.CompanyID, 10) +
				" user " + strconv.FormatInt(j.UserID, 10) + "; pdctl dlq peek lists them all"})
		last := v.Reason
		v = Verdict{Outcome: OutcomeDeadLettered, Reason: ReasonRetriesExhausted, Status: v.Status,
			Message: "last attempt: " + last + lastMessage(v.Message), Err: v.Err}
	}
	switch v.Outcome {
	case OutcomeDeadLettered:
		err := e.deadLetter(ctx, d, j, v)
		if err == nil && v.claim != nil {
			// Done as far as deliveries go: a copy of this message delivered again (its
			// acknowledgement lost) is a duplicate, not a second call. Only an operator who
			// checked the remote service runs it again (pdctl dlq redrive -id forgets the
			// claim, tokenstore.ForgetWork).
			sctx, cancel := deadline.Detached(ctx, bookkeepingTimeout)
			if cerr := e.Claims.CompleteWork(sctx, v.claim.key, v.claim.owner, e.claimTTL()); cerr != nil {
				e.logger().LogAttrs(ctx, slog.LevelWarn, "job claim not settled", slog.String("job_id", j.ID),
					slog.String("action", string(v.Outcome)), slog.String("error", cerr.Error()))
			}
			cancel()
		}
		if err != nil {
			// Not acknowledged, so not lost: SQS delivers it again (and at worst its own
			// redrive moves it to the dead-letter queue).
			e.Alerts.Notify(ctx, alerts.Alert{Reason: ReasonDeadLetterFailed, Summary: "A job could not be sent to the dead-letter queue", Detail: alerts.ErrorDetail(err)})
			v = Verdict{Outcome: OutcomeRetry, Reason: ReasonDeadLetterFailed, Status: v.Status,
				Message: "dead-letter (" + v.Reason + ") failed", Err: err, RetryAfter: e.backoff(j.Attempt + d.attempts())}
			if d.queued {
				e.hide(ctx, d, j, v.RetryAfter)
			}
		}
	case OutcomeRetry:
		if d.queued {
			v.RetryAfter = min(v.RetryAfter, MaxVisibility)
			e.hide(ctx, d, j, v.RetryAfter)
		}
	}
	return v
}

// deadLetter sends the job's original body to the dead-letter queue with the attributes of
// jobs.DeadLetter, which an operator filters on and pdctl reads.
func (e *Engine) deadLetter(ctx context.Context, d delivery, j jobs.Job, v Verdict) error {
	errText := v.Message
	if v.Err != nil {
		errText = v.Err.Error()
	}
	attrs := jobs.DeadLetter{
		Reason: v.Reason, Error: errText, Status: v.Status,
		CompanyID: j.CompanyID, UserID: j.UserID, JobID: j.ID, Kind: j.Kind,
		ReceiveCount: d.receives, MessageID: d.messageID, EarlierAttempts: d.earlier, Deferrals: d.deferrals,
	}.Attributes()
	body := d.body
	if body == "" {
		body = "{}" // SQS refuses an empty body; a direct payload is never empty here
	}
	sctx, cancel := deadline.Detached(ctx, bookkeepingTimeout)
	defer cancel()
	_, err := e.Queue.SendMessage(sctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(e.Config.DeadLetterQueueURL),
		MessageBody:       aws.String(body),
		MessageAttributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("send to dead-letter queue: %w", err)
	}
	return nil
}

// hide makes SQS deliver the message again after wait, not after the queue's visibility timeout.
func (e *Engine) hide(ctx context.Context, d delivery, j jobs.Job, wait time.Duration) {
	sctx, cancel := deadline.Detached(ctx, bookkeepingTimeout)
	defer cancel()
	_, err := e.Queue.ChangeMessageVisibility(sctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(e.Config.JobsQueueURL),
		ReceiptHandle:     aws.String(d.receipt),
		VisibilityTimeout: visibilitySeconds(wait),
	})
	if err != nil {
		// The message still comes back, after the queue's own visibility timeout.
		e.logger().LogAttrs(ctx, slog.LevelWarn, "change message visibility failed", slog.String("job_id", j.ID),
			slog.String("message_id", d.messageID), slog.String("error", err.Error()))
	}
}

// visibilitySeconds is wait as an SQS visibility timeout: whole seconds rounded up, within
// [0, MaxVisibility].
func visibilitySeconds(wait time.Duration) int32 {
	return int32(CeilSeconds(min(max(wait, 0), MaxVisibility)))
}

// logVerdict writes the one event per job decision.
func (e *Engine) logVerdict(ctx context.Context, d delivery, j jobs.Job, v Verdict) {
	level := slog.LevelInfo
	switch v.Outcome {
	case OutcomeRetry:
		level = slog.LevelWarn
	case OutcomeDeadLettered, outcomeRejected:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("job_id", j.ID),
		slog.String("kind", j.Kind),
		slog.Int64("company_id", j.CompanyID),
		slog.Int64("user_id", j.UserID),
		slog.String("action", string(v.Outcome)),
		slog.String("reason", v.Reason),
		slog.Int("status", v.Status),
		slog.Int("receive_count", d.receives),
	}
	if d.earlier > 0 || d.deferrals > 0 {
		attrs = append(attrs, slog.Int("earlier_attempts", d.earlier), slog.Int("deferrals", d.deferrals))
	}
	if la, ok := e.Runners[j.Kind].(LogAttrer); ok {
		attrs = append(attrs, la.LogAttrs(j)...)
	}
	if d.messageID != "" {
		attrs = append(attrs, slog.String("message_id", d.messageID))
	}
	if v.RetryAfter > 0 && (v.Outcome == OutcomeRetry || v.Outcome == OutcomeDeferred) {
		attrs = append(attrs, slog.Int64("retry_after_s", CeilSeconds(v.RetryAfter)))
	}
	if v.Err != nil {
		// Errors from this project's packages never contain tokens, codes or bodies.
		attrs = append(attrs, slog.String("error", v.Err.Error()))
	} else if v.Message != "" && v.Outcome != OutcomeSucceeded {
		attrs = append(attrs, slog.String("message", v.Message))
	}
	e.logger().LogAttrs(ctx, level, "job "+string(v.Outcome), attrs...)
	e.Metrics.Job(string(v.Outcome), v.Reason, v.Status)
}

func (e *Engine) logPanic(ctx context.Context, j jobs.Job, p any) {
	e.logger().LogAttrs(ctx, slog.LevelError, e.Name+" panic", slog.String("job_id", j.ID),
		slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
}

// partialJob decodes what it can of a body, for logging and dead-letter attributes of a job
// that may be invalid.
func partialJob(body string) jobs.Job {
	var j jobs.Job
	_ = json.Unmarshal([]byte(body), &j)
	return j
}

// receiveCount reads SQS's ApproximateReceiveCount; 1 when absent or unreadable.
func receiveCount(attrs map[string]string) int {
	n, err := strconv.Atoi(attrs["ApproximateReceiveCount"])
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// copyAttributes turns the message attributes of a received message into those of a new one.
func copyAttributes(in map[string]events.SQSMessageAttribute) map[string]sqstypes.MessageAttributeValue {
	out := map[string]sqstypes.MessageAttributeValue{}
	for k, a := range in {
		switch {
		case a.DataType == "":
		case a.StringValue != nil:
			out[k] = sqstypes.MessageAttributeValue{DataType: aws.String(a.DataType), StringValue: a.StringValue}
		case a.BinaryValue != nil:
			out[k] = sqstypes.MessageAttributeValue{DataType: aws.String(a.DataType), BinaryValue: a.BinaryValue}
		}
	}
	return out
}

// countAttr reads one of the worker's counts from a received message; 0 when absent or
// unreadable (a message from a producer).
func countAttr(attrs map[string]events.SQSMessageAttribute, k string) int {
	a, ok := attrs[k]
	if !ok || a.StringValue == nil {
		return 0
	}
	n, err := strconv.Atoi(*a.StringValue)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// setCount writes one of the worker's counts on a message to send; 0 is left out.
func setCount(attrs map[string]sqstypes.MessageAttributeValue, k string, n int) {
	if n <= 0 {
		delete(attrs, k)
		return
	}
	attrs[k] = sqstypes.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(n))}
}

func lastMessage(m string) string {
	if m == "" {
		return ""
	}
	return ": " + m
}

// newOwner names one run of a job in its claim: unique per delivery and attempt.
func newOwner(d delivery) string {
	src := "direct"
	if d.queued {
		src = d.messageID
	}
	return src + "/" + rand.Text()
}
