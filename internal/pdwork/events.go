package pdwork

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
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
	// Now is the clock a timestamp from the future is clamped against (webhook.ClampFuture);
	// time.Now when nil.
	Now func() time.Time
	// Log receives the runner's own warnings; nil discards.
	Log *slog.Logger
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
	// The receiver clamped already; a job from elsewhere (a catch-up, an operator) is held to
	// the same rule, so no timestamp far ahead becomes the entity's last seen change.
	ev.ClampFuture(r.now())
	if ev.Action == webhook.ActionChange || ev.Action == webhook.ActionDelete || ev.CatchUp {
		// Creates are never skipped: there is one per entity, and a change that overtook it
		// must not hide it. A caught-up create is: it is the entity as listed, and a webhook
		// event of the entity processed at or after its time already covered it.
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
	if ev.DataOmitted {
		if err := fetchEntity(ctx, c, &ev); err != nil {
			return VerdictOf(err)
		}
	}
	if v := appVerdict(r.Handler.HandleEvent(ctx, ev, c), c, ReasonHandled); v.Outcome != worker.OutcomeSucceeded {
		return v
	}
	// The installation's last processed event: where a catch-up starts. A failed write only
	// makes a later catch-up start earlier (and skip what it lists twice by the entity clock).
	if _, err := r.Entities.AdvanceEntity(ctx, LastEventKey(ev.Installation()), ev.Timestamp, LastEventTTL); err != nil && r.Log != nil {
		r.Log.LogAttrs(ctx, slog.LevelWarn, "last event not recorded", slog.String("action", "mark_last_event"),
			slog.Int64("company_id", ev.CompanyID), slog.Int64("user_id", ev.UserID), slog.String("error", err.Error()))
	}
	return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: ReasonHandled, Status: c.status}
}

// LastEventTTL is how long the time of an installation's last processed event is kept: an
// installation without events for longer is caught up from its install time.
const LastEventTTL = 400 * 24 * time.Hour

// LastEventKey is the EntityClock key under which the time of the latest event processed for
// installation id is kept (the webhook_event runner advances it after each handled event; a
// catch-up starts there).
func LastEventKey(id installation.ID) string { return "lastevent#" + id.String() }

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

// LogAttrs names the event (ids, entity, action, version, catch_up when it is one), never its
// data.
func (*WebhookEvents) LogAttrs(j jobs.Job) []slog.Attr {
	ev, err := eventOf(j)
	if err != nil {
		return nil
	}
	attrs := []slog.Attr{slog.String("event_id", ev.ID), slog.String("entity", ev.Entity), slog.String("entity_id", ev.EntityID),
		slog.String("event_action", ev.Action), slog.String("version", ev.Version)}
	if ev.CatchUp {
		attrs = append(attrs, slog.Bool("catch_up", true))
	}
	return attrs
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

// fetchEntity fills the Data of an event queued without it (too large for a job) with the
// entity as the API returns it now (pdapi.EntityPath: the v2 endpoint where there is one), so
// the app's handler sees the event as a small one would have come. A delete has nothing to
// fetch; an entity gone since (404) leaves Data empty; an entity type without a single-item
// endpoint is handed on as it is (DataOmitted tells the handler).
func fetchEntity(ctx context.Context, c *Client, ev *webhook.Event) error {
	path, ok := pdapi.EntityPath(ev.Entity, ev.EntityID)
	if !ok || ev.Action == webhook.ActionDelete {
		return nil
	}
	resp, err := c.Do(ctx, http.MethodGet, path, nil, false)
	var d *Decided
	if errors.As(err, &d) && d.Verdict.Status == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fetch %s %s of an event too large for a job: %w", ev.Entity, ev.EntityID, err)
	}
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return fmt.Errorf("fetch %s %s: malformed answer: %w", ev.Entity, ev.EntityID, err)
	}
	ev.Data = body.Data
	return nil
}

func (r *WebhookEvents) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *WebhookEvents) entityTTL() time.Duration {
	if r.EntityTTL > 0 {
		return r.EntityTTL
	}
	return DefaultEntityTTL
}
