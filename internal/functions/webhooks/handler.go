package webhooks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/deadline"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// credentials gives the webhook Basic pair from the secret; *clientcreds.Source satisfies it.
type credentials interface {
	Get(ctx context.Context) (clientcreds.Credentials, error)
}

// eventLog records accepted events for dedupe (pending until the send is confirmed) and finds
// the owner of a v1 delivery's webhook; *tokenstore.Store satisfies it.
type eventLog interface {
	AcceptEvent(ctx context.Context, id installation.ID, key string, lease, ttl time.Duration) (tokenstore.EventReceipt, error)
	ConfirmEvent(ctx context.Context, r tokenstore.EventReceipt, ttl time.Duration) error
	ForgetEvent(ctx context.Context, r tokenstore.EventReceipt) error
	WebhookOwner(ctx context.Context, companyID int64, webhookID string) (installation.ID, error)
}

// enqueuer hands a job to the jobs queue; *jobs.Enqueuer satisfies it.
type enqueuer interface {
	Enqueue(ctx context.Context, j jobs.Job) error
}

// defaultDedupeTTL outlives Pipedrive's retries (3 s, 30 s, 150 s after the first attempt) and
// a ban's 30 minutes by far; a day keeps the table small.
const defaultDedupeTTL = 24 * time.Hour

// cleanupTimeout bounds the write that settles an acceptance after the send: ConfirmEvent, or
// ForgetEvent when the send failed.
const cleanupTimeout = 2 * time.Second

// sendReserve is what the send leaves of the invocation (deadline.Reserve): the settling write
// and the answer must still fit, so a hung send never leaves the record unsettled by a
// function timeout.
const sendReserve = cleanupTimeout + 500*time.Millisecond

// leaseSlack is added to the invocation's time left to make the pending lease: clocks of
// Lambda and DynamoDB differ a little, and the lease must end after the invocation did.
const leaseSlack = time.Second

// fallbackLease is the pending lease when the context has no deadline (outside Lambda).
const fallbackLease = 30 * time.Second

// handler receives Pipedrive's webhook deliveries: it checks the Basic credentials, caps and
// parses the body, routes the event to the installation that owns the webhook (v2
// meta.webhook_owner_id; for v1 the installation recorded for the webhook id at registration),
// refuses an owner the credentials do not belong to, clamps a timestamp from the future, records
// the event as pending (one DynamoDB transaction: installation active, not seen before), sends
// it to the jobs queue as a webhook_event job within a deadline reserve, and confirms the record
// (a second write) or takes it back. It never calls Pipedrive, so it answers well within
// Pipedrive's 10 s. Every 200 answer has the same body, so an answer never tells whether a
// company installed the app. Answers (action/reason in the log):
//
//   - 200 accepted/enqueued; 200 duplicate/already_accepted; 200 dropped/installation_<status>
//     or installation_not_found or webhook_unknown (an error answer would only make Pipedrive
//     retry and, in the end, ban the webhook);
//   - 401 rejected/unauthorized: bad credentials, or credentials of another installation than
//     the payload's owner (before any DynamoDB write);
//   - 400 rejected/malformed; 413 rejected/too_large; 405 rejected/method_not_allowed;
//   - 503 failed/in_progress: another delivery of the event holds its lease (Pipedrive's retry
//     comes after it); 503 failed/credentials_unavailable, owner_lookup_failed, store_failed,
//     enqueue_failed: nothing kept, Pipedrive retries.
type handler struct {
	creds  credentials
	events eventLog
	jobs   enqueuer
	log    *slog.Logger
	ttl    time.Duration
	// now is the clock future timestamps are clamped against; time.Now when nil.
	now func() time.Time
	// metrics counts each delivery (metrics.WebhookDeliveries by action and reason) and each
	// duplicate; nil counts nothing.
	metrics *metrics.Emitter
}

// answer is what a delivery got, for the response and the one log line.
type answer struct {
	status int
	action string // accepted | duplicate | dropped | rejected | failed | not_configured
	reason string
	ev     webhook.Event
	err    error
	// clamped: the event's timestamp was in the future and was set to the receiver's clock.
	clamped bool
}

// handle is the Lambda entry point (API Gateway HTTP API, payload format 2.0).
func (h *handler) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	a := h.receive(ctx, req)
	h.logAnswer(ctx, req, a)
	return respond(a), nil
}

// respond is the HTTP answer of a: okBody for every 200, the action and reason otherwise.
func respond(a answer) events.APIGatewayV2HTTPResponse {
	body := []byte(okBody)
	if a.status != http.StatusOK {
		body, _ = json.Marshal(map[string]string{"status": a.action, "reason": a.reason})
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: a.status,
		Headers:    map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"},
		Body:       string(body),
	}
}

// okBody is the body of every 200 answer: accepted, duplicate and dropped read the same to the
// caller (the log tells them apart), so no answer reveals whether a company installed the app.
const okBody = `{"status":"ok"}`

func (h *handler) receive(ctx context.Context, req events.APIGatewayV2HTTPRequest) answer {
	if m := req.RequestContext.HTTP.Method; m != "" && m != http.MethodPost {
		return answer{status: http.StatusMethodNotAllowed, action: "rejected", reason: "method_not_allowed"}
	}
	caller, a, ok := h.authenticate(ctx, req)
	if !ok {
		return a
	}
	body, ok := decodeBody(req)
	if !ok {
		return answer{status: http.StatusBadRequest, action: "rejected", reason: "malformed", err: errors.New("body is not valid base64")}
	}
	ev, err := webhook.Parse(body)
	switch {
	case errors.Is(err, webhook.ErrTooLarge):
		return answer{status: http.StatusRequestEntityTooLarge, action: "rejected", reason: "too_large", err: err}
	case err != nil:
		return answer{status: http.StatusBadRequest, action: "rejected", reason: "malformed", err: err}
	}
	if a, ok := h.route(ctx, &ev, caller); !ok {
		return a
	}
	clamped := ev.ClampFuture(h.clock())
	job, err := jobs.WebhookEvent(ev)
	if err != nil {
		return answer{status: http.StatusBadRequest, action: "rejected", reason: "malformed", ev: ev, err: err}
	}
	a = h.accept(ctx, ev, job)
	a.clamped = clamped
	return a
}

// authenticate checks the delivery's credentials and returns whom they belong to: one
// installation, or the zero ID for the deployment-wide pair (valid for every installation).
// Not ok: the answer to give (401, or 503 when the secret cannot be read).
func (h *handler) authenticate(ctx context.Context, req events.APIGatewayV2HTTPRequest) (installation.ID, answer, bool) {
	creds, err := h.creds.Get(ctx)
	if errors.Is(err, clientcreds.ErrNotConfigured) {
		// A first deploy before `pdctl setup`: no installation, so no webhook, exists yet.
		return installation.ID{}, answer{status: http.StatusServiceUnavailable, action: "not_configured", reason: "client_credentials_placeholder"}, false
	}
	if err != nil {
		return installation.ID{}, answer{status: http.StatusServiceUnavailable, action: "failed", reason: "credentials_unavailable", err: err}, false
	}
	if !creds.Webhook.Authorized(header(req.Headers, "authorization")) {
		return installation.ID{}, answer{status: http.StatusUnauthorized, action: "rejected", reason: "unauthorized"}, false
	}
	return installation.ID{}, answer{}, true
}

// route sets the event's owning installation when the payload names none (v1: the owner
// recorded for its webhook id at registration; else the installation the credentials belong
// to, if of the payload's company), then checks the credentials may act for that owner. Not
// ok: the answer to give (401 for another installation's credentials, before any write).
func (h *handler) route(ctx context.Context, ev *webhook.Event, caller installation.ID) (answer, bool) {
	if ev.UserID == 0 {
		owner, err := h.events.WebhookOwner(ctx, ev.CompanyID, ev.WebhookID)
		switch {
		case errors.Is(err, tokenstore.ErrWebhookUnknown) && caller.Valid() && caller.CompanyID == ev.CompanyID:
			owner = caller
		case errors.Is(err, tokenstore.ErrWebhookUnknown):
			return answer{status: http.StatusOK, action: "dropped", reason: "webhook_unknown", ev: *ev}, false
		case err != nil:
			return answer{status: http.StatusServiceUnavailable, action: "failed", reason: "owner_lookup_failed", ev: *ev, err: err}, false
		}
		ev.UserID = owner.UserID
	}
	if !mayActFor(caller, ev.Installation()) {
		return answer{status: http.StatusUnauthorized, action: "rejected", reason: "unauthorized", ev: *ev,
			err: errors.New("the credentials belong to another installation than the payload's owner")}, false
	}
	return answer{}, true
}

// mayActFor reports whether credentials of caller may deliver events of owner: an
// installation's credentials for that installation only; the deployment-wide pair (the zero
// ID) for every installation.
func mayActFor(caller, owner installation.ID) bool {
	return caller == (installation.ID{}) || caller == owner
}

// accept records the event as pending, sends its job within the deadline reserve, and
// confirms the record, or takes it back when the send failed so that Pipedrive's retry is
// accepted. A send whose outcome is unknown (a timeout) may have queued the job: the retry
// queues it again under the same job ID, and the worker runs one of them.
func (h *handler) accept(ctx context.Context, ev webhook.Event, job jobs.Job) answer {
	receipt, err := h.events.AcceptEvent(ctx, ev.Installation(), ev.Key(), leaseFor(ctx), h.dedupeTTL())
	var refusal *tokenstore.EventRefusal
	switch {
	case errors.Is(err, tokenstore.ErrEventSeen):
		return answer{status: http.StatusOK, action: "duplicate", reason: "already_accepted", ev: ev}
	case errors.Is(err, tokenstore.ErrEventPending):
		return answer{status: http.StatusServiceUnavailable, action: "failed", reason: "in_progress", ev: ev}
	case errors.As(err, &refusal) && errors.Is(err, tokenstore.ErrEventNotInstalled):
		reason := "installation_not_found"
		if refusal.Status != "" {
			reason = "installation_" + string(refusal.Status)
		}
		return answer{status: http.StatusOK, action: "dropped", reason: reason, ev: ev}
	case err != nil:
		return answer{status: http.StatusServiceUnavailable, action: "failed", reason: "store_failed", ev: ev, err: err}
	}
	sctx, cancel := deadline.Reserve(ctx, sendReserve)
	err = h.jobs.Enqueue(sctx, job)
	cancel()
	cctx, cancelCleanup := deadline.Detached(ctx, cleanupTimeout)
	defer cancelCleanup()
	if err != nil {
		// Take the acceptance back so Pipedrive's retry of this delivery is accepted at once
		// (should this fail too, the lease ends and the retry after it takes over).
		if ferr := h.events.ForgetEvent(cctx, receipt); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return answer{status: http.StatusServiceUnavailable, action: "failed", reason: "enqueue_failed", ev: ev, err: err}
	}
	if err := h.events.ConfirmEvent(cctx, receipt, h.dedupeTTL()); err != nil {
		// The job is queued: the answer is 200. Unconfirmed, the record ends with its lease; a
		// later copy of the event would queue it again and the worker run it once.
		return answer{status: http.StatusOK, action: "accepted", reason: "enqueued_unconfirmed", ev: ev, err: err}
	}
	return answer{status: http.StatusOK, action: "accepted", reason: "enqueued", ev: ev}
}

// leaseFor is the pending lease of an acceptance made under ctx: the invocation's time left
// (its send cannot outlive it) plus leaseSlack, so a delivery that takes the record over after
// the lease never sends at the same time as the one that held it.
func leaseFor(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left > 0 {
			return left + leaseSlack
		}
		return leaseSlack
	}
	return fallbackLease
}

func (h *handler) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// decodeBody returns the request body as bytes; API Gateway base64-encodes bodies it does not
// take for text.
func decodeBody(req events.APIGatewayV2HTTPRequest) ([]byte, bool) {
	if !req.IsBase64Encoded {
		return []byte(req.Body), true
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	return b, err == nil
}

// header reads a header case-insensitively (API Gateway lower-cases them; tests may not).
func header(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func (h *handler) dedupeTTL() time.Duration {
	if h.ttl > 0 {
		return h.ttl
	}
	return defaultDedupeTTL
}

// logAnswer writes the one event per delivery: ids, entity, action and answer; never the body
// or the Authorization header.
func (h *handler) logAnswer(ctx context.Context, req events.APIGatewayV2HTTPRequest, a answer) {
	level := slog.LevelInfo
	switch {
	case a.action == "not_configured":
		level = slog.LevelWarn // expected until the operator sets the credentials
	case a.status >= 500:
		level = slog.LevelError
	case a.status >= 400:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("action", a.action), slog.String("reason", a.reason), slog.Int("status", a.status),
		slog.String("api_request_id", req.RequestContext.RequestID), // the HTTP API access log's requestId
	}
	if a.ev.ID != "" {
		attrs = append(attrs, slog.Int64("company_id", a.ev.CompanyID), slog.Int64("user_id", a.ev.UserID),
			slog.Int64("actor_user_id", a.ev.ActorUserID), slog.String("webhook_id", a.ev.WebhookID),
			slog.String("event_id", a.ev.ID), slog.String("entity", a.ev.Entity), slog.String("entity_id", a.ev.EntityID),
			slog.String("event_action", a.ev.Action), slog.String("version", a.ev.Version), slog.Int("attempt", a.ev.Attempt))
	}
	if a.clamped {
		attrs = append(attrs, slog.Bool("timestamp_clamped", true))
	}
	if a.err != nil {
		// Errors of this project's packages: no secret, no body (webhook.Parse never quotes it).
		attrs = append(attrs, slog.String("error", a.err.Error()))
	}
	h.log.LogAttrs(ctx, level, "webhook "+a.action, attrs...)
	h.metrics.Count(metrics.WebhookDeliveries, metrics.Outcome(a.action), metrics.Reason(a.reason))
	h.metrics.Answer(a.status, a.reason)
	if a.action == "duplicate" {
		h.metrics.Count(metrics.WebhookDuplicates)
	}
}
