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

// eventLog records accepted events for dedupe; *tokenstore.Store satisfies it.
type eventLog interface {
	AcceptEvent(ctx context.Context, id installation.ID, key string, ttl time.Duration) (tokenstore.EventReceipt, error)
	ForgetEvent(ctx context.Context, r tokenstore.EventReceipt) error
}

// enqueuer hands a job to the jobs queue; *jobs.Enqueuer satisfies it.
type enqueuer interface {
	Enqueue(ctx context.Context, j jobs.Job) error
}

// defaultDedupeTTL outlives Pipedrive's retries (3 s, 30 s, 150 s after the first attempt) and
// a ban's 30 minutes by far; a day keeps the table small.
const defaultDedupeTTL = 24 * time.Hour

// cleanupTimeout bounds taking an acceptance back after the enqueue failed.
const cleanupTimeout = 2 * time.Second

// handler receives Pipedrive's webhook deliveries: it checks the Basic credentials, caps and
// parses the body, records the event (one DynamoDB transaction: installation active, not seen
// before) and hands it to the jobs queue as a webhook_event job. It never calls Pipedrive, so
// it answers well within Pipedrive's 10 s. Answers: 200 accepted or duplicate or dropped
// (unknown or inactive installation: an error answer would only make Pipedrive retry and, in
// the end, ban the webhook); 401 bad credentials; 400 malformed; 413 too large; 405 not a
// POST; 503 when the secret, the table or the queue failed (nothing kept, Pipedrive retries).
type handler struct {
	creds  credentials
	events eventLog
	jobs   enqueuer
	log    *slog.Logger
	ttl    time.Duration
	// metrics counts each delivery (metrics.WebhookDeliveries by action and reason) and each
	// duplicate; nil counts nothing.
	metrics *metrics.Emitter
}

// answer is what a delivery got, for the response and the one log line.
type answer struct {
	status int
	action string // accepted | duplicate | dropped | rejected | failed
	reason string
	ev     webhook.Event
	err    error
}

// handle is the Lambda entry point (API Gateway HTTP API, payload format 2.0).
func (h *handler) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	a := h.receive(ctx, req)
	h.logAnswer(ctx, req, a)
	body, _ := json.Marshal(map[string]string{"status": a.action, "reason": a.reason})
	return events.APIGatewayV2HTTPResponse{
		StatusCode: a.status,
		Headers:    map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"},
		Body:       string(body),
	}, nil
}

func (h *handler) receive(ctx context.Context, req events.APIGatewayV2HTTPRequest) answer {
	if m := req.RequestContext.HTTP.Method; m != "" && m != http.MethodPost {
		return answer{status: http.StatusMethodNotAllowed, action: "rejected", reason: "method_not_allowed"}
	}
	creds, err := h.creds.Get(ctx)
	if err != nil {
		return answer{status: http.StatusServiceUnavailable, action: "failed", reason: "credentials_unavailable", err: err}
	}
	if !creds.Webhook.Authorized(header(req.Headers, "authorization")) {
		return answer{status: http.StatusUnauthorized, action: "rejected", reason: "unauthorized"}
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
	job, err := eventJob(ev)
	if err != nil {
		return answer{status: http.StatusBadRequest, action: "rejected", reason: "malformed", ev: ev, err: err}
	}
	receipt, err := h.events.AcceptEvent(ctx, ev.Installation(), ev.Key(), h.dedupeTTL())
	var refusal *tokenstore.EventRefusal
	switch {
	case errors.Is(err, tokenstore.ErrEventSeen):
		return answer{status: http.StatusOK, action: "duplicate", reason: "already_accepted", ev: ev}
	case errors.As(err, &refusal) && errors.Is(err, tokenstore.ErrEventNotInstalled):
		reason := "installation_not_found"
		if refusal.Status != "" {
			reason = "installation_" + string(refusal.Status)
		}
		return answer{status: http.StatusOK, action: "dropped", reason: reason, ev: ev}
	case err != nil:
		return answer{status: http.StatusServiceUnavailable, action: "failed", reason: "store_failed", ev: ev, err: err}
	}
	if err := h.jobs.Enqueue(ctx, job); err != nil {
		// Take the acceptance back so Pipedrive's retry of this delivery is accepted.
		cctx, cancel := deadline.Detached(ctx, cleanupTimeout)
		defer cancel()
		if ferr := h.events.ForgetEvent(cctx, receipt); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return answer{status: http.StatusServiceUnavailable, action: "failed", reason: "enqueue_failed", ev: ev, err: err}
	}
	return answer{status: http.StatusOK, action: "accepted", reason: "enqueued", ev: ev}
}

// eventJob is the webhook_event job for ev: its ID is the event's identity, so the worker's
// claims also run it once should two jobs for it ever be enqueued.
func eventJob(ev webhook.Event) (jobs.Job, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return jobs.Job{}, err
	}
	j := jobs.Job{ID: ev.Key(), Kind: jobs.KindWebhookEvent, CompanyID: ev.CompanyID, UserID: ev.UserID, Body: body}
	return j, j.Validate()
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
	case a.status >= 500:
		level = slog.LevelError
	case a.status >= 400:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("action", a.action), slog.String("reason", a.reason), slog.Int("status", a.status),
		slog.String("request_id", req.RequestContext.RequestID),
	}
	if a.ev.ID != "" {
		attrs = append(attrs, slog.Int64("company_id", a.ev.CompanyID), slog.Int64("user_id", a.ev.UserID),
			slog.String("event_id", a.ev.ID), slog.String("entity", a.ev.Entity), slog.String("entity_id", a.ev.EntityID),
			slog.String("event_action", a.ev.Action), slog.String("version", a.ev.Version), slog.Int("attempt", a.ev.Attempt))
	}
	if a.err != nil {
		// Errors of this project's packages: no secret, no body (webhook.Parse never quotes it).
		attrs = append(attrs, slog.String("error", a.err.Error()))
	}
	h.log.LogAttrs(ctx, level, "webhook "+a.action, attrs...)
	h.metrics.Count(metrics.WebhookDeliveries, metrics.Outcome(a.action), metrics.Reason(a.reason))
	if a.action == "duplicate" {
		h.metrics.Count(metrics.WebhookDuplicates)
	}
}
