package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// Outcome is what the worker did with one job. The values are stable strings, logged as
// "action" and returned in Result.Outcome.
type Outcome string

// The outcomes.
const (
	// OutcomeSucceeded: Pipedrive answered 2xx (register_webhooks: every webhook exists). The
	// job's claim is marked done, so a repeat within Config.ClaimTTL is a duplicate.
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomeSkipped: nothing to do (register_webhooks without Config.Webhooks.URL).
	OutcomeSkipped Outcome = "skipped"
	// OutcomeDuplicate: a job with this ID already succeeded; Pipedrive was not called.
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeDeferred: NotBefore is in the future. From SQS the message was sent again with a
	// delay and the original acknowledged; a direct caller should invoke again after RetryAfter.
	OutcomeDeferred Outcome = "deferred"
	// OutcomeRetry: a transient failure, or another delivery of the same job is in progress.
	// From SQS the message is reported as a batch item failure and hidden for RetryAfter; a
	// direct caller should invoke again after RetryAfter.
	OutcomeRetry Outcome = "retry"
	// OutcomeDeadLettered: retrying cannot help. The job was sent to the dead-letter queue with
	// its reason (and, from SQS, acknowledged); a person was alerted when one must act.
	OutcomeDeadLettered Outcome = "dead_lettered"
)

// Reasons of the worker's own decisions (Pipedrive's answers use pderrors reasons).
const (
	ReasonInvalidJob               = "invalid_job"
	ReasonNotBefore                = "not_before"
	ReasonNotBeforeTooFar          = "not_before_too_far"
	ReasonWebhookURLUnset          = "webhook_url_unset"
	ReasonDuplicate                = "already_done"
	ReasonInProgress               = "in_progress"
	ReasonDeadline                 = "deadline"
	ReasonClaimFailed              = "claim_failed"
	ReasonStoreFailed              = "store_failed"
	ReasonInstallationNotFound     = "installation_not_found"
	ReasonInstallationUninstalled  = "installation_uninstalled"
	ReasonNeedsReauth              = "needs_reauthorization"
	ReasonInstallationNotActive    = "installation_not_active"
	ReasonRefreshInProgress        = "refresh_in_progress"
	ReasonRefreshFailed            = "refresh_failed"
	ReasonUnauthorizedAfterRefresh = "unauthorized_after_refresh"
	ReasonRetriesExhausted         = "retries_exhausted"
	ReasonDeadLetterFailed         = "dead_letter_failed"
	ReasonRequeueFailed            = "requeue_failed"
	ReasonPanic                    = "panic"
)

// Installations reads installations; *tokenstore.Store satisfies it. Get returns
// tokenstore.ErrNotFound for an installation never stored.
type Installations interface {
	Get(ctx context.Context, id tokenstore.InstallationID) (tokenstore.Installation, error)
}

// Claims makes a job delivered more than once run once; *tokenstore.Store satisfies it.
// ClaimWork returns tokenstore.ErrWorkClaimed with the live claim to every caller but the
// first (and a crashed owner's successor).
type Claims interface {
	ClaimWork(ctx context.Context, key, owner string, lease, ttl time.Duration) (tokenstore.WorkClaim, error)
	CompleteWork(ctx context.Context, key, owner string, ttl time.Duration) error
	ReleaseWork(ctx context.Context, key, owner string) error
}

// Refresher refreshes an installation's tokens, one refresh at a time across all instances;
// *refresh.Refresher satisfies it. Only refresh.OutcomeFailed comes with an error.
type Refresher interface {
	// Refresh refreshes when the access token is about to expire, or always with force.
	Refresh(ctx context.Context, id tokenstore.InstallationID, force bool) (refresh.Result, error)
	// RefreshRejected refreshes after accessToken was answered 401, unless another process
	// already replaced it (refresh.OutcomeFresh with the current tokens).
	RefreshRejected(ctx context.Context, id tokenstore.InstallationID, accessToken string) (refresh.Result, error)
}

// API performs one Pipedrive call; *pdapi.Client satisfies it. A non-2xx answer is a
// *pderrors.Error (pderrors.DecisionOf).
type API interface {
	Do(ctx context.Context, method, apiDomain, path, accessToken string, body []byte) (pdapi.Response, error)
}

// WebhookAPI lists and creates the app's webhooks; *pdapi.Client satisfies it.
type WebhookAPI interface {
	Webhooks(ctx context.Context, apiDomain, accessToken string) ([]pdapi.Webhook, error)
	CreateWebhook(ctx context.Context, apiDomain, accessToken string, w pdapi.NewWebhook) (pdapi.Webhook, error)
}

// Queue is the part of SQS the worker uses; *sqs.Client satisfies it.
type Queue interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Alerter tells a person something needs them; *alerts.Publisher satisfies it (and
// de-duplicates per reason and installation).
type Alerter interface {
	Alert(ctx context.Context, a alerts.Alert) error
}

// Defaults for zero Config fields.
const (
	// DefaultMaxReceives is the jobs queue's maxReceiveCount in template.yaml.
	DefaultMaxReceives = 5
	// DefaultClaimLease outlives one run (the function's 30 s timeout) and ends before the
	// queue's 180 s visibility timeout brings a crashed run's message back, so that delivery
	// can take the claim over.
	DefaultClaimLease = 2 * time.Minute
	// DefaultClaimTTL is how long a done job is remembered: duplicates from webhooks and
	// retried producers arrive within minutes, not days.
	DefaultClaimTTL = 24 * time.Hour
	// DefaultRefreshBusyDelay is the retry delay when another process is refreshing the
	// installation's tokens.
	DefaultRefreshBusyDelay = 5 * time.Second
	// DefaultExpirySkew: an access token expiring within it is refreshed before the call.
	DefaultExpirySkew = 30 * time.Second
	// DefaultConcurrency is how many jobs of one SQS batch run at once.
	DefaultConcurrency = 5
	// DefaultDeadlineReserve: a job is not started with less time left before the
	// invocation's deadline (one call, a refresh and the bookkeeping take about that long).
	DefaultDeadlineReserve = 5 * time.Second
	// DefaultMaxResultBody bounds Result.Body.
	DefaultMaxResultBody = 256 << 10
	// DefaultMaxDefer bounds how far in the future NotBefore may lie: the queue keeps messages
	// four days, and a date further out is a producer's bug.
	DefaultMaxDefer = 72 * time.Hour
)

// settleTime is kept free before the invocation's deadline (at most half of DeadlineReserve)
// for what follows a job's work: settling its claim, an alert, the dead-letter queue or the
// visibility change, and the batch's answer.
const settleTime = 2 * time.Second

// MaxVisibility is the longest a retried message is hidden. SQS allows 12 hours from the
// receive; the margin covers the time between the receive and this invocation's call.
const MaxVisibility = 12*time.Hour - 5*time.Minute

// maxAttrText bounds a dead-letter message attribute's text.
const maxAttrText = 500

// DefaultBackoff is the wait before retry attempt n+1 when Pipedrive gave no hint: 30 s, 1 min,
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

// Config is the worker's behaviour, as values.
type Config struct {
	// JobsQueueURL is the queue SQS events come from: retried messages are hidden there
	// (ChangeMessageVisibility) and deferred ones sent again. Required for SQS events.
	JobsQueueURL string
	// DeadLetterQueueURL receives dead-lettered jobs with their reason. Required.
	DeadLetterQueueURL string
	// Webhooks is what register_webhooks jobs create.
	Webhooks WebhookConfig
	// MaxReceives is the jobs queue's maxReceiveCount (DefaultMaxReceives when zero). A job
	// still to be retried at that receive is dead-lettered here, with its reason, instead of
	// being moved by SQS's redrive without one.
	MaxReceives int
	// Backoff is the retry delay when Pipedrive gave no hint, by attempt (the job's Attempt
	// plus SQS's ApproximateReceiveCount); DefaultBackoff when nil.
	Backoff func(attempt int) time.Duration
	// ClaimLease and ClaimTTL: see DefaultClaimLease and DefaultClaimTTL.
	ClaimLease, ClaimTTL time.Duration
	// RefreshBusyDelay: see DefaultRefreshBusyDelay.
	RefreshBusyDelay time.Duration
	// ExpirySkew: see DefaultExpirySkew.
	ExpirySkew time.Duration
	// Concurrency: see DefaultConcurrency.
	Concurrency int
	// DeadlineReserve: see DefaultDeadlineReserve.
	DeadlineReserve time.Duration
	// MaxResultBody bounds Result.Body (DefaultMaxResultBody when zero); a larger answer is
	// left out and Result.BodyOmitted set.
	MaxResultBody int
	// MaxDefer: see DefaultMaxDefer.
	MaxDefer time.Duration
	// Now is the clock for NotBefore, token expiry and claims; time.Now when nil.
	Now func() time.Time
}

// Handler runs Pipedrive jobs from the jobs queue (SQS events) or from a direct invocation.
// Installations, Claims, Refresher, API, Webhooks and Queue are required; Alerts and Log are
// optional. Safe for concurrent use.
type Handler struct {
	// Installations gives each job's installation and tokens.
	Installations Installations
	// Claims keeps one run per job ID (see Config.ClaimLease and ClaimTTL).
	Claims Claims
	// Refresher refreshes expired tokens before a call and rejected ones after a 401.
	Refresher Refresher
	// API runs api_call jobs; Webhooks runs register_webhooks jobs.
	API      API
	Webhooks WebhookAPI
	// Queue hides retried messages, sends deferred ones again and feeds the dead-letter queue.
	Queue Queue
	// Alerts is told when a person must act; nil only logs.
	Alerts Alerter
	// Log receives one JSON event per job decision; nil discards.
	Log    *slog.Logger
	Config Config
}

// Result is the answer to a direct invocation: what happened to the job. As JSON:
// {"job_id","kind","outcome","reason","status","message","retry_after_seconds","body",
// "body_omitted"}, empty fields left out.
type Result struct {
	JobID   string  `json:"job_id"`
	Kind    string  `json:"kind"`
	Outcome Outcome `json:"outcome"`
	// Reason is a pderrors reason for Pipedrive's answer ("ok", "not_found", "rate_limited",
	// …) or one of the worker's Reason… constants.
	Reason string `json:"reason"`
	// Status is Pipedrive's HTTP status, 0 when no answer decided.
	Status int `json:"status,omitempty"`
	// Message is Pipedrive's error message or the worker's short explanation; safe to show.
	Message string `json:"message,omitempty"`
	// RetryAfter is how long to wait before invoking again (OutcomeRetry, OutcomeDeferred);
	// encoded as whole seconds, rounded up, in retry_after_seconds.
	RetryAfter time.Duration `json:"-"`
	// Body is Pipedrive's answer for an api_call, or the created and existing webhook ids for
	// register_webhooks (OutcomeSucceeded only).
	Body json.RawMessage `json:"body,omitempty"`
	// BodyOmitted is set when the answer was larger than Config.MaxResultBody or not JSON.
	BodyOmitted bool `json:"body_omitted,omitempty"`
}

// MarshalJSON encodes RetryAfter as retry_after_seconds.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		RetryAfterSeconds int64 `json:"retry_after_seconds,omitempty"`
	}{plain(r), ceilSeconds(r.RetryAfter)})
}

// InvalidJobError is the error of a direct invocation whose payload is not a valid job. Lambda
// reports its type name as errorType; the message says what is wrong with the payload.
type InvalidJobError struct {
	// Err wraps jobs.ErrInvalidJob.
	Err error
}

func (e *InvalidJobError) Error() string { return "apicall: " + e.Err.Error() }

// Unwrap returns Err.
func (e *InvalidJobError) Unwrap() error { return e.Err }

// Handle is the Lambda entry point. A payload with "Records" is an SQS event: its jobs run
// (Config.Concurrency at a time) and the answer is an events.SQSEventResponse naming the
// messages to retry. Any other payload is one job, run synchronously: the answer is a Result,
// or an *InvalidJobError when it is not a valid job (nothing else is an error).
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(raw, &probe) == nil {
		if _, ok := probe["Records"]; ok {
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("apicall: malformed SQS event: %w", err)
			}
			return h.HandleSQS(ctx, ev), nil
		}
	}
	res, err := h.HandleJob(ctx, raw)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// HandleSQS runs the jobs of an SQS batch and returns the ids of the messages SQS must deliver
// again (those whose outcome is OutcomeRetry). Every other message is acknowledged: done,
// duplicate, deferred (sent again with a delay) or dead-lettered (sent to the dead-letter
// queue with its reason first).
func (h *Handler) HandleSQS(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	retry := make([]bool, len(ev.Records))
	sem := make(chan struct{}, h.concurrency())
	var wg sync.WaitGroup
	for i, rec := range ev.Records {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d := delivery{
				body: rec.Body, queued: true, messageID: rec.MessageId, receipt: rec.ReceiptHandle,
				receives: receiveCount(rec.Attributes), attrs: rec.MessageAttributes,
			}
			retry[i] = h.run(ctx, d).outcome == OutcomeRetry
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

// HandleJob runs one job given as JSON and returns what happened. It does not wait for
// retries: OutcomeRetry and OutcomeDeferred come back at once with RetryAfter. A dead-lettered
// job is sent to the dead-letter queue as from SQS. A payload that is not a valid job is an
// *InvalidJobError and goes nowhere: the caller has it.
func (h *Handler) HandleJob(ctx context.Context, raw json.RawMessage) (Result, error) {
	j, err := jobs.Parse(string(raw))
	if err != nil {
		h.logVerdict(ctx, delivery{}, partialJob(string(raw)), verdict{outcome: "rejected", reason: ReasonInvalidJob, err: err})
		return Result{}, &InvalidJobError{Err: err}
	}
	v := h.run(ctx, delivery{body: string(raw), receives: 1})
	return Result{
		JobID: j.ID, Kind: j.Kind, Outcome: v.outcome, Reason: v.reason, Status: v.status,
		Message: v.message, RetryAfter: v.retryAfter, Body: v.body, BodyOmitted: v.bodyOmitted,
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
	attrs    map[string]events.SQSMessageAttribute
}

// verdict is the decision for one job, and what the log and Result report of it.
type verdict struct {
	outcome     Outcome
	reason      string
	status      int // Pipedrive's HTTP status, 0 if none decided
	message     string
	retryAfter  time.Duration
	body        json.RawMessage
	bodyOmitted bool
	err         error // for the log and the dead-letter "error" attribute; never holds a secret
}

// run decides one delivery, carries the decision out (dead-letter queue, visibility, claim) and
// logs it.
func (h *Handler) run(ctx context.Context, d delivery) (v verdict) {
	j := partialJob(d.body)
	defer func() {
		if p := recover(); p != nil {
			h.logger().LogAttrs(ctx, slog.LevelError, "apicall panic", slog.String("job_id", j.ID),
				slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
			v = h.apply(ctx, d, j, verdict{outcome: OutcomeRetry, reason: ReasonPanic, err: fmt.Errorf("panic: %v", p)})
		}
		h.logVerdict(ctx, d, j, v)
	}()
	parsed, err := jobs.Parse(d.body)
	if err != nil {
		// Never retried: the same bytes fail the same way. Parked with the reason instead.
		h.alert(ctx, alerts.Alert{Reason: ReasonInvalidJob, Severity: alerts.SeverityWarning,
			Summary: "A malformed job reached the jobs queue and was dead-lettered", Detail: errorDetail(err)})
		return h.apply(ctx, d, j, verdict{outcome: OutcomeDeadLettered, reason: ReasonInvalidJob, message: errorDetail(err), err: err})
	}
	j = parsed
	return h.apply(ctx, d, j, h.decide(ctx, d, j))
}

// decide makes the decision for a valid job, holding the job's claim while it works.
func (h *Handler) decide(ctx context.Context, d delivery, j jobs.Job) (v verdict) {
	now := h.now()
	if !j.NotBefore.IsZero() && j.NotBefore.After(now) {
		return h.deferJob(ctx, d, j, now)
	}
	if j.Kind == jobs.KindRegisterWebhooks && h.Config.Webhooks.URL == "" {
		return verdict{outcome: OutcomeSkipped, reason: ReasonWebhookURLUnset, message: "WEBHOOK_URL is not set: no webhooks to register"}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < h.deadlineReserve() {
		return verdict{outcome: OutcomeRetry, reason: ReasonDeadline, retryAfter: time.Second}
	}
	key, owner := "apicall#"+j.ID, newOwner(d)
	claim, err := h.Claims.ClaimWork(ctx, key, owner, h.claimLease(), h.claimTTL())
	switch {
	case errors.Is(err, tokenstore.ErrWorkClaimed) && claim.State == tokenstore.WorkDone:
		return verdict{outcome: OutcomeDuplicate, reason: ReasonDuplicate}
	case errors.Is(err, tokenstore.ErrWorkClaimed):
		// Another delivery is running it: look again when its lease ends.
		return verdict{outcome: OutcomeRetry, reason: ReasonInProgress, retryAfter: max(claim.LeaseUntil.Sub(now), time.Second)}
	case err != nil:
		return verdict{outcome: OutcomeRetry, reason: ReasonClaimFailed, err: err}
	}
	defer func() {
		if p := recover(); p != nil {
			h.logger().LogAttrs(ctx, slog.LevelError, "apicall panic", slog.String("job_id", j.ID),
				slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
			v = verdict{outcome: OutcomeRetry, reason: ReasonPanic, err: fmt.Errorf("panic: %v", p)}
		}
		h.settleClaim(ctx, j, key, owner, v)
	}()
	if j.Kind == jobs.KindRegisterWebhooks {
		// Two installs in quick succession enqueue two jobs (one per install version): run
		// together, both would list no webhooks and both create every one.
		lock := "apicall#register_webhooks#" + tokenstore.InstallationID{CompanyID: j.CompanyID, UserID: j.UserID}.String()
		held, err := h.Claims.ClaimWork(ctx, lock, owner, h.claimLease(), h.claimLease())
		switch {
		case errors.Is(err, tokenstore.ErrWorkClaimed):
			return verdict{outcome: OutcomeRetry, reason: ReasonInProgress, retryAfter: max(held.LeaseUntil.Sub(now), time.Second)}
		case err != nil:
			return verdict{outcome: OutcomeRetry, reason: ReasonClaimFailed, err: err}
		}
		defer h.settleClaim(ctx, j, lock, owner, verdict{outcome: OutcomeRetry}) // released, never kept as done
	}
	// Lambda ends the invocation at its deadline, and with it the answer for the whole batch:
	// the work stops early enough for the claim, the queue and the answer to come after it.
	wctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, dl.Add(-min(settleTime, h.deadlineReserve()/2)))
		defer cancel()
	}
	return h.work(wctx, j)
}

// settleClaim marks the claim done after success and releases it otherwise, so a redelivery
// (or an operator's redrive from the dead-letter queue) can run the job again.
func (h *Handler) settleClaim(ctx context.Context, j jobs.Job, key, owner string, v verdict) {
	sctx, cancel := detached(ctx)
	defer cancel()
	var err error
	if v.outcome == OutcomeSucceeded {
		err = h.Claims.CompleteWork(sctx, key, owner, h.claimTTL())
	} else {
		err = h.Claims.ReleaseWork(sctx, key, owner)
	}
	if err != nil {
		// The lease lapsed (another delivery may now run it) or the store failed: the job's
		// outcome stands, duplicates are possible.
		h.logger().LogAttrs(ctx, slog.LevelWarn, "job claim not settled", slog.String("job_id", j.ID),
			slog.String("action", string(v.outcome)), slog.String("error", err.Error()))
	}
}

// work loads the installation, makes sure its access token is usable and runs the job.
func (h *Handler) work(ctx context.Context, j jobs.Job) verdict {
	id := tokenstore.InstallationID{CompanyID: j.CompanyID, UserID: j.UserID}
	in, err := h.Installations.Get(ctx, id)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return verdict{outcome: OutcomeDeadLettered, reason: ReasonInstallationNotFound, message: "no installation " + id.String()}
	case err != nil:
		return verdict{outcome: OutcomeRetry, reason: ReasonStoreFailed, err: err}
	}
	switch in.Status {
	case tokenstore.StatusActive:
	case tokenstore.StatusUninstalled:
		return verdict{outcome: OutcomeDeadLettered, reason: ReasonInstallationUninstalled, message: "the app was uninstalled"}
	case tokenstore.StatusNeedsReauth:
		h.alert(ctx, alerts.Alert{Reason: ReasonNeedsReauth, Severity: alerts.SeverityWarning, CompanyID: id.CompanyID, UserID: id.UserID,
			Summary: "An installation needs reauthorization: the user must install the app again; its jobs are dead-lettered",
			Detail:  "job " + j.ID + " (" + j.Kind + ")"})
		return verdict{outcome: OutcomeDeadLettered, reason: ReasonNeedsReauth, message: "the user must install the app again"}
	default:
		return verdict{outcome: OutcomeDeadLettered, reason: ReasonInstallationNotActive, message: "installation status " + string(in.Status)}
	}
	st := &tokenState{in: in}
	if in.AccessToken == "" || !in.ExpiresAt.After(h.now().Add(h.expirySkew())) {
		res, err := h.Refresher.Refresh(ctx, id, in.AccessToken == "")
		if v := h.refreshVerdict(res, err); v != nil {
			return *v
		}
		st.in = res.Installation
	}
	if j.Kind == jobs.KindRegisterWebhooks {
		return h.registerWebhooks(ctx, j, st)
	}
	return h.apiCall(ctx, j, st)
}

// tokenState is the installation a job acts for, with the tokens currently in use.
type tokenState struct {
	in tokenstore.Installation
	// refreshedAfter401 is set once the job has refreshed after a 401: a second 401 is final.
	refreshedAfter401 bool
}

// apiCall runs an api_call job.
func (h *Handler) apiCall(ctx context.Context, j jobs.Job, st *tokenState) verdict {
	var body []byte
	if len(j.Body) > 0 && !bytes.Equal(bytes.TrimSpace(j.Body), []byte("null")) {
		body = j.Body
	}
	var resp pdapi.Response
	if v := h.withToken(ctx, j, st, func(in tokenstore.Installation) error {
		var err error
		resp, err = h.API.Do(ctx, j.Method, in.APIDomain, j.Path, in.AccessToken, body)
		return err
	}); v != nil {
		return *v
	}
	v := verdict{outcome: OutcomeSucceeded, reason: string(pderrors.ReasonOK), status: resp.Status}
	switch {
	case len(resp.Body) == 0:
	case resp.Truncated || len(resp.Body) > h.maxResultBody() || !json.Valid(resp.Body):
		v.bodyOmitted = true
	default:
		v.body = resp.Body
	}
	return v
}

// withToken runs call with the job's tokens. A 401 refreshes the tokens once per job (unless
// another process already did) and runs call again; a second 401 dead-letters the job. Other
// failures become the verdict their pderrors.Decision asks for. nil means call succeeded.
func (h *Handler) withToken(ctx context.Context, j jobs.Job, st *tokenState, call func(tokenstore.Installation) error) *verdict {
	err := call(st.in)
	if err == nil {
		return nil
	}
	d := pderrors.DecisionOf(err)
	if d.Action != pderrors.RefreshAndRetry {
		v := h.callFailure(ctx, j, err)
		return &v
	}
	if !st.refreshedAfter401 {
		st.refreshedAfter401 = true
		res, rerr := h.Refresher.RefreshRejected(ctx, st.in.ID, st.in.AccessToken)
		if v := h.refreshVerdict(res, rerr); v != nil {
			return v
		}
		st.in = res.Installation
		if err = call(st.in); err == nil {
			return nil
		}
		if d = pderrors.DecisionOf(err); d.Action != pderrors.RefreshAndRetry {
			v := h.callFailure(ctx, j, err)
			return &v
		}
	}
	// Pipedrive rejects a token it has just issued: the grant is broken in a way a refresh
	// does not fix (revoked, or a different user's). A person must look.
	h.alert(ctx, alerts.Alert{Reason: ReasonUnauthorizedAfterRefresh, Severity: alerts.SeverityWarning,
		CompanyID: j.CompanyID, UserID: j.UserID,
		Summary: "Pipedrive answered 401 to a freshly refreshed access token; the job was dead-lettered",
		Detail:  jobDetail(j, d)})
	return &verdict{outcome: OutcomeDeadLettered, reason: ReasonUnauthorizedAfterRefresh, status: d.Status, message: d.Message, err: err}
}

// callFailure turns a failed call into the verdict its Decision asks for, alerting when a
// person must act.
func (h *Handler) callFailure(ctx context.Context, j jobs.Job, err error) verdict {
	d := pderrors.DecisionOf(err)
	v := verdict{reason: string(d.Reason), status: d.Status, message: d.Message, err: err}
	if d.Action == pderrors.Retry {
		v.outcome, v.retryAfter = OutcomeRetry, d.RetryAfter
	} else {
		// DeadLetter, and Reauthorize (which an API answer never gives): retrying cannot help.
		v.outcome = OutcomeDeadLettered
	}
	if d.Alert {
		h.alert(ctx, alertFor(j, d))
	}
	return v
}

// refreshVerdict is nil when a refresh left usable tokens in res.Installation, else the verdict
// for the job.
func (h *Handler) refreshVerdict(res refresh.Result, err error) *verdict {
	v := &verdict{message: "token refresh: " + res.Reason, err: err}
	switch res.Outcome {
	case refresh.OutcomeRefreshed, refresh.OutcomeFresh:
		if res.Installation.AccessToken != "" {
			return nil
		}
		v.outcome, v.reason = OutcomeRetry, ReasonRefreshFailed
	case refresh.OutcomeLeaseHeld:
		v.outcome, v.reason, v.retryAfter = OutcomeRetry, ReasonRefreshInProgress, h.refreshBusyDelay()
	case refresh.OutcomeNeedsReauth:
		// The refresher marked the installation and alerted.
		v.outcome, v.reason, v.message = OutcomeDeadLettered, ReasonNeedsReauth, "Pipedrive rejected the refresh token: the user must install the app again"
	case refresh.OutcomeNotActive:
		v.outcome, v.reason = OutcomeDeadLettered, ReasonInstallationNotActive
	case refresh.OutcomeNotFound:
		v.outcome, v.reason = OutcomeDeadLettered, ReasonInstallationNotFound
	default:
		// retry_later, failed, skipped: the refresher recorded it; try the job when the
		// refresh is due again.
		v.outcome, v.reason = OutcomeRetry, ReasonRefreshFailed
		if !res.RetryAt.IsZero() {
			v.retryAfter = max(res.RetryAt.Sub(h.now()), 0)
		}
	}
	return v
}

// deferJob handles a job whose NotBefore is still ahead. From SQS it sends the original message
// again with a delay (at most SQS's 15 minutes; it comes back and is deferred again until due)
// and acknowledges this one, which keeps the receive count, and so the redrive to the
// dead-letter queue, for real failures.
func (h *Handler) deferJob(ctx context.Context, d delivery, j jobs.Job, now time.Time) verdict {
	wait := j.NotBefore.Sub(now)
	if wait > h.maxDefer() {
		return verdict{outcome: OutcomeDeadLettered, reason: ReasonNotBeforeTooFar,
			message: fmt.Sprintf("not_before is %s ahead, more than %s", wait.Round(time.Second), h.maxDefer())}
	}
	v := verdict{outcome: OutcomeDeferred, reason: ReasonNotBefore, retryAfter: wait}
	if !d.queued {
		return v
	}
	sctx, cancel := detached(ctx)
	defer cancel()
	_, err := h.Queue.SendMessage(sctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(h.Config.JobsQueueURL),
		MessageBody:       aws.String(d.body),
		DelaySeconds:      jobs.DelaySeconds(j.NotBefore, now),
		MessageAttributes: copyAttributes(d.attrs),
	})
	if err != nil {
		return verdict{outcome: OutcomeRetry, reason: ReasonRequeueFailed, retryAfter: wait, err: err}
	}
	return v
}

// apply carries out a verdict on the queues: a dead-lettered job is sent to the dead-letter
// queue; a retried SQS message is hidden for the retry delay, or dead-lettered when this was
// its last receive. It returns the verdict as carried out.
func (h *Handler) apply(ctx context.Context, d delivery, j jobs.Job, v verdict) verdict {
	if v.outcome == OutcomeRetry && v.retryAfter <= 0 {
		v.retryAfter = h.backoff(j.Attempt + d.receives)
	}
	if v.outcome == OutcomeRetry && d.queued && d.receives >= h.maxReceives() {
		// SQS would move it to the dead-letter queue at the next receive, without a reason.
		h.alert(ctx, alerts.Alert{Reason: ReasonRetriesExhausted, Severity: alerts.SeverityWarning,
			CompanyID: j.CompanyID, UserID: j.UserID,
			Summary: "A job kept failing and was dead-lettered after " + strconv.Itoa(d.receives) + " attempts",
			Detail:  "job " + j.ID + " (" + j.Kind + "): last reason " + v.reason})
		last := v.reason
		v = verdict{outcome: OutcomeDeadLettered, reason: ReasonRetriesExhausted, status: v.status,
			message: "last attempt: " + last + lastMessage(v.message), err: v.err}
	}
	switch v.outcome {
	case OutcomeDeadLettered:
		if err := h.deadLetter(ctx, d, j, v); err != nil {
			// Not acknowledged, so not lost: SQS delivers it again (and at worst its own
			// redrive moves it to the dead-letter queue).
			h.alert(ctx, alerts.Alert{Reason: ReasonDeadLetterFailed, Summary: "A job could not be sent to the dead-letter queue", Detail: errorDetail(err)})
			v = verdict{outcome: OutcomeRetry, reason: ReasonDeadLetterFailed, status: v.status,
				message: "dead-letter (" + v.reason + ") failed", err: err, retryAfter: h.backoff(j.Attempt + d.receives)}
			if d.queued {
				h.hide(ctx, d, j, v.retryAfter)
			}
		}
	case OutcomeRetry:
		if d.queued {
			v.retryAfter = min(v.retryAfter, MaxVisibility)
			h.hide(ctx, d, j, v.retryAfter)
		}
	}
	return v
}

// deadLetter sends the job's original body to the dead-letter queue with attributes an
// operator can filter on.
func (h *Handler) deadLetter(ctx context.Context, d delivery, j jobs.Job, v verdict) error {
	attrs := map[string]sqstypes.MessageAttributeValue{}
	put := func(k, dataType, s string) {
		if s = attrText(s); s != "" && s != "0" {
			attrs[k] = sqstypes.MessageAttributeValue{DataType: aws.String(dataType), StringValue: aws.String(s)}
		}
	}
	put("reason", "String", v.reason)
	errText := v.message
	if v.err != nil {
		errText = v.err.Error()
	}
	put("error", "String", errText)
	put("status", "Number", strconv.Itoa(v.status))
	put("company_id", "Number", strconv.FormatInt(j.CompanyID, 10))
	put("user_id", "Number", strconv.FormatInt(j.UserID, 10))
	put("job_id", "String", j.ID)
	put("kind", "String", j.Kind)
	put("receive_count", "Number", strconv.Itoa(d.receives))
	put("message_id", "String", d.messageID)
	body := d.body
	if body == "" {
		body = "{}" // SQS refuses an empty body; a direct payload is never empty here
	}
	sctx, cancel := detached(ctx)
	defer cancel()
	_, err := h.Queue.SendMessage(sctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(h.Config.DeadLetterQueueURL),
		MessageBody:       aws.String(body),
		MessageAttributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("send to dead-letter queue: %w", err)
	}
	return nil
}

// hide makes SQS deliver the message again after wait, not after the queue's visibility timeout.
func (h *Handler) hide(ctx context.Context, d delivery, j jobs.Job, wait time.Duration) {
	sctx, cancel := detached(ctx)
	defer cancel()
	_, err := h.Queue.ChangeMessageVisibility(sctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(h.Config.JobsQueueURL),
		ReceiptHandle:     aws.String(d.receipt),
		VisibilityTimeout: visibilitySeconds(wait),
	})
	if err != nil {
		// The message still comes back, after the queue's own visibility timeout.
		h.logger().LogAttrs(ctx, slog.LevelWarn, "change message visibility failed", slog.String("job_id", j.ID),
			slog.String("message_id", d.messageID), slog.String("error", err.Error()))
	}
}

// visibilitySeconds is wait as an SQS visibility timeout: whole seconds rounded up, within
// [0, MaxVisibility].
func visibilitySeconds(wait time.Duration) int32 {
	return int32(ceilSeconds(min(max(wait, 0), MaxVisibility)))
}

// logVerdict writes the one event per job decision.
func (h *Handler) logVerdict(ctx context.Context, d delivery, j jobs.Job, v verdict) {
	level := slog.LevelInfo
	switch v.outcome {
	case OutcomeRetry:
		level = slog.LevelWarn
	case OutcomeDeadLettered, "rejected":
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("job_id", j.ID),
		slog.String("kind", j.Kind),
		slog.Int64("company_id", j.CompanyID),
		slog.Int64("user_id", j.UserID),
		slog.String("action", string(v.outcome)),
		slog.String("reason", v.reason),
		slog.Int("status", v.status),
		slog.Int("receive_count", d.receives),
	}
	if j.Kind == jobs.KindAPICall {
		// The route only: a query string may carry filters or ids.
		route, _, _ := strings.Cut(j.Path, "?")
		attrs = append(attrs, slog.String("method", j.Method), slog.String("route", route))
	}
	if d.messageID != "" {
		attrs = append(attrs, slog.String("message_id", d.messageID))
	}
	if v.retryAfter > 0 && (v.outcome == OutcomeRetry || v.outcome == OutcomeDeferred) {
		attrs = append(attrs, slog.Int64("retry_after_s", ceilSeconds(v.retryAfter)))
	}
	if v.err != nil {
		// Errors from this project's packages never contain tokens, codes or bodies.
		attrs = append(attrs, slog.String("error", v.err.Error()))
	} else if v.message != "" && v.outcome != OutcomeSucceeded {
		attrs = append(attrs, slog.String("message", v.message))
	}
	h.logger().LogAttrs(ctx, level, "job "+string(v.outcome), attrs...)
}

// alert publishes a, logging instead when no Alerter is set or the publish fails. It does not
// wait on the invocation's cancellation.
func (h *Handler) alert(ctx context.Context, a alerts.Alert) {
	attrs := []slog.Attr{slog.String("action", "alert"), slog.String("reason", a.Reason),
		slog.Int64("company_id", a.CompanyID), slog.Int64("user_id", a.UserID)}
	if h.Alerts == nil {
		h.logger().LogAttrs(ctx, slog.LevelError, "alert (no publisher configured)", attrs...)
		return
	}
	actx, cancel := detached(ctx)
	defer cancel()
	if err := h.Alerts.Alert(actx, a); err != nil {
		h.logger().LogAttrs(ctx, slog.LevelError, "alert publish failed", append(attrs, slog.String("error", err.Error()))...)
	}
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
		route, _, _ := strings.Cut(j.Path, "?")
		s += " " + j.Method + " " + route
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

// attrText makes s a valid SQS attribute value: characters SQS accepts only, at most
// maxAttrText bytes.
func attrText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF) {
			return r
		}
		return '?'
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > maxAttrText {
		s = strings.ToValidUTF8(s[:maxAttrText], "")
	}
	return s
}

// errorDetail is an error's text, safe to publish (this project's errors carry no secrets), cut short.
func errorDetail(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "")
	}
	return s
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

// detached is a context for bookkeeping after the work: not cancelled with ctx, bounded.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

func (h *Handler) now() time.Time {
	if h.Config.Now != nil {
		return h.Config.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

func (h *Handler) backoff(attempt int) time.Duration {
	if h.Config.Backoff != nil {
		return h.Config.Backoff(attempt)
	}
	return DefaultBackoff(attempt)
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func orInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

func (h *Handler) maxReceives() int   { return orInt(h.Config.MaxReceives, DefaultMaxReceives) }
func (h *Handler) concurrency() int   { return orInt(h.Config.Concurrency, DefaultConcurrency) }
func (h *Handler) maxResultBody() int { return orInt(h.Config.MaxResultBody, DefaultMaxResultBody) }
func (h *Handler) claimLease() time.Duration {
	return orDuration(h.Config.ClaimLease, DefaultClaimLease)
}
func (h *Handler) claimTTL() time.Duration { return orDuration(h.Config.ClaimTTL, DefaultClaimTTL) }
func (h *Handler) refreshBusyDelay() time.Duration {
	return orDuration(h.Config.RefreshBusyDelay, DefaultRefreshBusyDelay)
}
func (h *Handler) expirySkew() time.Duration {
	return orDuration(h.Config.ExpirySkew, DefaultExpirySkew)
}
func (h *Handler) deadlineReserve() time.Duration {
	return orDuration(h.Config.DeadlineReserve, DefaultDeadlineReserve)
}
func (h *Handler) maxDefer() time.Duration { return orDuration(h.Config.MaxDefer, DefaultMaxDefer) }
