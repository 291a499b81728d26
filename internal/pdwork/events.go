package pdwork

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// Reasons of the webhook_event runner.
const (
	// ReasonHandled: the app's handler returned nil.
	ReasonHandled = "handled"
	// ReasonStaleChange: a later change of the same entity was processed already; this one,
	// delivered late, is skipped.
	ReasonStaleChange = "stale_change"
	// ReasonMalformedEvent: the job's body is not a webhook event of the job's installation.
	ReasonMalformedEvent = "malformed_event"
)

// DefaultEntityTTL is how long the latest processed change time of an entity is kept.
// Out-of-order deliveries come within Pipedrive's retries (minutes) and the worker's own
// retries (hours at most); a day covers both.
const DefaultEntityTTL = 24 * time.Hour

// EntityClock keeps the latest processed change time per entity; *tokenstore.Store satisfies
// it. AdvanceEntity returns false, changing nothing, when a later change of the entity was
// recorded.
type EntityClock interface {
	AdvanceEntity(ctx context.Context, entityKey string, at time.Time, ttl time.Duration) (bool, error)
}

// WebhookEvents runs webhook_event jobs (enqueued by the webhook receiver): it skips a change
// or delete older than one already processed for the same entity (Pipedrive's timestamps),
// then hands the event to the app's Handler with a Client for the installation whose calls go
// through a Session (token refresh, Pipedrive's retry times, dead letters, alerts). Each event
// runs once: the job's ID is the event's identity and the engine claims it. Sessions, Entities
// and Handler are required; Jobs lets the handler queue the app's jobs. Safe for concurrent use.
type WebhookEvents struct {
	Sessions *Sessions
	Entities EntityClock
	Handler  EventHandler
	Jobs     Enqueuer
	// EntityTTL: see DefaultEntityTTL.
	EntityTTL time.Duration
}

var (
	_ worker.Runner    = (*WebhookEvents)(nil)
	_ worker.Checker   = (*WebhookEvents)(nil)
	_ worker.LogAttrer = (*WebhookEvents)(nil)
)

// Run decides one event: skipped when stale, else the verdict of the app's handler —
// succeeded (handled) when it returns nil, the Session's verdict for a failed call (retry at
// Pipedrive's time, or dead-letter with the reason), retry with backoff for any other error.
// An event of an installation that is gone (uninstalled, never stored) is skipped: nobody is
// left to act for.
func (r *WebhookEvents) Run(ctx context.Context, j jobs.Job) worker.Verdict {
	ev, err := eventOf(j)
	if err != nil {
		return worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonMalformedEvent, Message: err.Error(), Err: err}
	}
	if ev.Action == webhook.ActionChange || ev.Action == webhook.ActionDelete {
		// Creates are never skipped: there is one per entity, and a change that overtook it
		// must not hide it.
		fresh, err := r.Entities.AdvanceEntity(ctx, ev.EntityKey(), ev.Timestamp, r.entityTTL())
		if err != nil {
			return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: ReasonStoreFailed, Err: err}
		}
		if !fresh {
			return worker.Verdict{Outcome: worker.OutcomeSkipped, Reason: ReasonStaleChange,
				Message: fmt.Sprintf("a change of %s %s later than %s was processed already", ev.Entity, ev.EntityID, ev.Timestamp.Format(time.RFC3339Nano))}
		}
	}
	c := NewClient(r.Sessions, j, r.Jobs)
	return appVerdict(r.Handler.HandleEvent(ctx, ev, c), c, ReasonHandled)
}

// Check is jobs.CheckWebhookEvent plus: the body is a webhook event of the job's installation.
func (*WebhookEvents) Check(j jobs.Job) []string {
	if p := jobs.CheckWebhookEvent(j); len(p) > 0 {
		return p
	}
	if _, err := eventOf(j); err != nil {
		return []string{err.Error()}
	}
	return nil
}

// LogAttrs names the event (ids, entity, action, version), never its data.
func (*WebhookEvents) LogAttrs(j jobs.Job) []slog.Attr {
	ev, err := eventOf(j)
	if err != nil {
		return nil
	}
	return []slog.Attr{slog.String("event_id", ev.ID), slog.String("entity", ev.Entity), slog.String("entity_id", ev.EntityID),
		slog.String("event_action", ev.Action), slog.String("version", ev.Version)}
}

// eventOf decodes the event a webhook_event job carries and checks it belongs to the job's
// installation and can be ordered.
func eventOf(j jobs.Job) (webhook.Event, error) {
	var ev webhook.Event
	if err := json.Unmarshal(j.Body, &ev); err != nil {
		return webhook.Event{}, errors.New("webhook_event body is not a webhook event")
	}
	switch {
	case ev.ID == "" || ev.Entity == "" || ev.EntityID == "" || ev.Timestamp.IsZero():
		return webhook.Event{}, errors.New("webhook_event needs the event's id, entity, entity_id and timestamp")
	case ev.Action != webhook.ActionCreate && ev.Action != webhook.ActionChange && ev.Action != webhook.ActionDelete:
		return webhook.Event{}, errors.New("webhook_event action is not create, change or delete")
	case ev.Installation() != (installation.ID{CompanyID: j.CompanyID, UserID: j.UserID}):
		return webhook.Event{}, errors.New("webhook_event is not of the job's installation")
	}
	return ev, nil
}

func (r *WebhookEvents) entityTTL() time.Duration {
	if r.EntityTTL > 0 {
		return r.EntityTTL
	}
	return DefaultEntityTTL
}
