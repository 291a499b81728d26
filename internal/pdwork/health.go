package pdwork

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/catchup"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// Reasons of the check_webhooks and catch_up runners.
const (
	// ReasonWebhooksHealthy: every configured event has a current, active webhook.
	ReasonWebhooksHealthy = "webhooks_healthy"
	// ReasonWebhooksRepaired: stale webhooks were replaced or missing ones created.
	ReasonWebhooksRepaired = "webhooks_repaired"
	// ReasonCaughtUp: the catch-up listed every subscribed entity type and queued the events.
	ReasonCaughtUp = "caught_up"
	// ReasonCatchUpContinued: the catch-up queued what one run reads and a job for the rest.
	ReasonCatchUpContinued = "catch_up_continued"
	// ReasonEnqueueFailed: a follow-up job could not be queued.
	ReasonEnqueueFailed = "enqueue_failed"
)

// CheckAlertWindow is how long an alert of the daily check (a 422: the account cannot hold the
// webhooks) stays de-duplicated per reason and installation: the check finds the same problem
// every day, and a person needs to hear about it once, not daily.
const CheckAlertWindow = 30 * 24 * time.Hour

// CatchUpDelay is how long after a check began repairing webhooks its catch-up's window ends
// and the catch-up runs: the new webhooks deliver by then, so the window ends where they took
// over. Changes in the overlap come both ways; the entity clock runs a change once.
const CatchUpDelay = 10 * time.Second

// Enqueuer queues a follow-up job; *jobs.Enqueuer satisfies it.
type Enqueuer interface {
	Enqueue(ctx context.Context, j jobs.Job) error
}

// CheckWebhooks runs check_webhooks jobs, the daily health check of an installation's
// webhooks: one GET /api/v1/webhooks, and nothing more while every configured event has a
// current webhook (ours, v2, active, not banned, the installation's Basic user). Otherwise it
// replaces and creates webhooks as register_webhooks does (Register: the same plan, the same
// credentials), and when events may have been missed — a webhook was missing, inactive or
// banned, or had other credentials (its deliveries were refused) — it first queues a
// catch_up job whose window ends CatchUpDelay after the check. A 422 (the account cannot hold
// the webhooks) dead-letters and alerts through Sessions: give it a Sessions whose Alerts
// de-duplicate for days (oncall.Once), so a daily check alerts once. Register, Sessions and
// Jobs are required. Safe for concurrent use.
type CheckWebhooks struct {
	Register *RegisterWebhooks
	// Sessions opens the installation; Register.Sessions when nil.
	Sessions *Sessions
	Jobs     Enqueuer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

var (
	_ worker.Runner    = (*CheckWebhooks)(nil)
	_ worker.Exclusive = (*CheckWebhooks)(nil)
)

// ExclusiveKey is the registration's: a check and a registration of one installation never
// run at once (both would create the missing webhooks).
func (r *CheckWebhooks) ExclusiveKey(j jobs.Job) string { return r.Register.ExclusiveKey(j) }

// CheckSummary is the Result body of a check_webhooks job.
type CheckSummary struct {
	WebhookSummary
	// Lost says why events may have been missed ("" when none were).
	Lost string `json:"lost,omitempty"`
	// CatchUpJob is the id of the catch_up job queued, if any.
	CatchUpJob string `json:"catch_up_job,omitempty"`
}

// Run checks one installation's webhooks (see CheckWebhooks).
func (r *CheckWebhooks) Run(ctx context.Context, j jobs.Job) worker.Verdict {
	sessions := r.Sessions
	if sessions == nil {
		sessions = r.Register.Sessions
	}
	ss, creds, existing, v := r.Register.list(ctx, sessions, j)
	if v != nil {
		return *v
	}
	p := r.Register.plan(existing, creds.User)
	if p.healthy() {
		body, _ := json.Marshal(CheckSummary{WebhookSummary: WebhookSummary{Created: []WebhookRef{}, Existing: p.existing, Replaced: []WebhookRef{}}})
		return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: ReasonWebhooksHealthy, Status: 200, Body: body}
	}
	sum := CheckSummary{Lost: p.lost}
	if p.lost != "" {
		// Queued before the repair: a repair that fails half-way still leaves the catch-up.
		until := r.now().Add(CatchUpDelay)
		cj := jobs.CatchUpJob(jobID(j), j.ID, jobs.CatchUp{Until: until, Reason: p.lost})
		cj.NotBefore = until
		if err := r.Jobs.Enqueue(ctx, cj); err != nil {
			return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: ReasonEnqueueFailed, Err: err}
		}
		sum.CatchUpJob = cj.ID
	}
	ws, v := r.Register.apply(ctx, ss, j, p, creds)
	if v != nil {
		return *v
	}
	sum.WebhookSummary = ws
	body, _ := json.Marshal(sum)
	return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: ReasonWebhooksRepaired, Status: 200, Body: body}
}

func (r *CheckWebhooks) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// EventMarks reads the time of an installation's last processed event (LastEventKey);
// *tokenstore.Store satisfies it.
type EventMarks interface {
	EntityTime(ctx context.Context, key string) (time.Time, error)
}

// DefaultCatchUpPages is how many list pages (of catchup.PageLimit entities) one catch_up run
// reads before it queues a job for the rest.
const DefaultCatchUpPages = 4

// CatchUp runs catch_up jobs: it lists the entities of the subscribed types (Config.Events,
// through catchup.Types) whose update_time lies in the job's window — from the installation's
// last processed event (Marks, else its install time) to the job's Until — with Pipedrive's v2
// lists (updated_since, updated_until, cursor pages), and queues each as a webhook_event job
// (catchup.Event, CatchUp true). The webhook_event runner then skips what the entity clock
// shows processed and runs the rest once (the job id is the event's identity), so a catch-up
// run twice, or overlapping with live webhooks, processes nothing twice. Sessions, Marks and
// Jobs are required. Safe for concurrent use.
//
// Budget: each page is one v2 list call (about 10 of Pipedrive's daily budget tokens). Neither
// the catch_up job nor the webhook_event jobs it queues set jobs.Job.UseReserve: they wait,
// without spending attempts, while the company's remaining budget is within the reserve left to
// the customer's other tools.
type CatchUp struct {
	Sessions *Sessions
	Marks    EventMarks
	Config   WebhookConfig
	Jobs     Enqueuer
	// MaxPages bounds the pages one run reads (DefaultCatchUpPages when zero).
	MaxPages int
	// Log receives one line per run; nil discards.
	Log *slog.Logger
}

var (
	_ worker.Runner    = (*CatchUp)(nil)
	_ worker.Checker   = (*CatchUp)(nil)
	_ worker.Exclusive = (*CatchUp)(nil)
)

// ExclusiveKey: one catch-up per installation at a time.
func (*CatchUp) ExclusiveKey(j jobs.Job) string { return jobs.KindCatchUp + "#" + jobID(j).String() }

// Check is jobs.CheckCatchUp.
func (*CatchUp) Check(j jobs.Job) []string { return jobs.CheckCatchUp(j) }

// CatchUpSummary is the Result body of a catch_up job.
type CatchUpSummary struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Queued counts the events queued per entity type; Listed the entities listed.
	Queued map[string]int `json:"queued"`
	Listed int            `json:"listed"`
	// NotListed are subscribed objects Pipedrive has no change list for.
	NotListed []string `json:"not_listed,omitempty"`
	// Next is the continuation job's id when the run stopped at MaxPages.
	Next string `json:"next,omitempty"`
}

// Run catches up one window, or the part of it MaxPages allows (see CatchUp).
func (r *CatchUp) Run(ctx context.Context, j jobs.Job) worker.Verdict {
	var req jobs.CatchUp
	if err := json.Unmarshal(j.Body, &req); err != nil || req.Until.IsZero() {
		return worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonMalformedEvent, Message: "catch_up needs a body with until"}
	}
	if r.Config.URL == "" {
		return worker.Verdict{Outcome: worker.OutcomeSkipped, Reason: ReasonWebhookURLUnset, Message: "WEBHOOK_URL is not set: no webhooks, nothing to catch up"}
	}
	ss, err := r.Sessions.Open(ctx, j)
	if err != nil {
		return VerdictOf(err)
	}
	id := jobID(j)
	if req.Since.IsZero() {
		last, err := r.Marks.EntityTime(ctx, LastEventKey(id))
		if err != nil {
			return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: ReasonStoreFailed, Err: err}
		}
		req.Since = last
		if req.Since.IsZero() {
			req.Since = ss.Installation().InstalledAt
		}
	}
	subs := make([]catchup.Subscription, len(r.Config.Events))
	for i, e := range r.Config.Events {
		subs[i] = catchup.Subscription{Object: e.Object, Action: e.Action}
	}
	types, notListed := catchup.Types(subs)
	sum := CatchUpSummary{Since: req.Since, Until: req.Until, Queued: map[string]int{}, NotListed: notListed}
	if !req.Since.Before(req.Until) {
		return r.done(ctx, j, sum, ReasonCaughtUp)
	}
	// Resume where a previous run stopped.
	start := 0
	if req.Entity != "" {
		for i, t := range types {
			if t.Entity == req.Entity {
				start = i
			}
		}
	}
	pages := 0
	for ti := start; ti < len(types); ti++ {
		t := types[ti]
		cursor := ""
		if ti == start {
			cursor = req.Cursor
		}
		for {
			if pages == r.maxPages() {
				next := req
				next.Entity, next.Cursor = t.Entity, cursor
				nj := jobs.CatchUpJob(id, fmt.Sprintf("%s+%s", runOf(j.ID), pageTag(t.Entity, cursor)), next)
				if err := r.Jobs.Enqueue(ctx, nj); err != nil {
					return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: ReasonEnqueueFailed, Err: err}
				}
				sum.Next = nj.ID
				return r.done(ctx, j, sum, ReasonCatchUpContinued)
			}
			resp, err := ss.Do(ctx, "GET", catchup.ListPath(t, req.Since, req.Until, cursor), nil)
			if err != nil {
				return VerdictOf(err)
			}
			pages++
			items, next, err := catchup.ParsePage(resp.Body)
			if err != nil {
				return worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonMalformedEvent, Message: err.Error(), Err: err}
			}
			sum.Listed += len(items)
			for _, it := range items {
				ev, ok := catchup.Event(t, it, id, req.Since)
				if !ok {
					continue
				}
				// As the receiver queues one: no HTML escaping, measured once encoded, and an
				// entity too large for a job queued without its data (the runner fetches it).
				ej, err := jobs.WebhookEvent(ev)
				if err == nil {
					err = r.Jobs.Enqueue(ctx, ej)
				}
				if err != nil {
					// A retry lists again; what was queued runs once (job id = event identity).
					return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: ReasonEnqueueFailed, Err: err}
				}
				sum.Queued[t.Entity]++
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	return r.done(ctx, j, sum, ReasonCaughtUp)
}

// runOf is the run part of a catch_up job id ("catch_up:<c>:<u>:<run>"), without an earlier
// continuation's suffix, so continuation ids do not grow.
func runOf(id string) string {
	rest := id
	for range 3 {
		if i := strings.IndexByte(rest, ':'); i >= 0 {
			rest = rest[i+1:]
		}
	}
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		rest = rest[:i]
	}
	if len(rest) > 64 {
		rest = rest[len(rest)-64:]
	}
	return rest
}

// pageTag names a continuation: the entity and a short digest of the cursor.
func pageTag(entity, cursor string) string {
	h := fnv.New32a()
	h.Write([]byte(cursor))
	return fmt.Sprintf("%s-%08x", entity, h.Sum32())
}

// jobID is the installation j acts for.
func jobID(j jobs.Job) installation.ID {
	return installation.ID{CompanyID: j.CompanyID, UserID: j.UserID}
}

func (r *CatchUp) done(ctx context.Context, j jobs.Job, sum CatchUpSummary, reason string) worker.Verdict {
	if r.Log != nil {
		n := 0
		for _, q := range sum.Queued {
			n += q
		}
		r.Log.LogAttrs(ctx, slog.LevelInfo, "catch-up", slog.String("action", "catch_up"), slog.String("reason", reason),
			slog.Int64("company_id", j.CompanyID), slog.Int64("user_id", j.UserID), slog.Int("listed", sum.Listed),
			slog.Int("queued", n), slog.Time("since", sum.Since), slog.Time("until", sum.Until))
	}
	body, _ := json.Marshal(sum)
	return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: reason, Status: 200, Body: body}
}

func (r *CatchUp) maxPages() int {
	if r.MaxPages > 0 {
		return r.MaxPages
	}
	return DefaultCatchUpPages
}
