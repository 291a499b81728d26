package refresher

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhookcheck"
)

// RunError is returned when the run as a whole failed: the due index could not be read, or the
// one refresh of a manual invocation failed. Lambda reports its errorType as "RunError".
type RunError struct {
	// Op says what failed, e.g. "list due installations" or "refresh 3408256:5206648".
	Op  string
	Err error
}

// Error is "refresher: <op>: <cause>".
func (e *RunError) Error() string { return "refresher: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *RunError) Unwrap() error { return e.Err }

// Handler refreshes the installations that are due, on the EventBridge Scheduler's call
// (refresh.Run over every shard, fanning out when much is due), on a fanned-out invocation
// {"shard":n} (refresh.Run over that shard), or one installation on a manual invocation.
// Store and Refresher are required, Log and Metrics are optional. Safe for concurrent use.
type Handler struct {
	// Store lists the installations due (*tokenstore.Store).
	Store refresh.Lister
	// Refresher refreshes one installation (*refresh.Refresher).
	Refresher refresh.One
	// Config bounds a scheduled run; the zero value uses refresh's defaults.
	Config refresh.RunConfig
	// Log receives the run's summary; nil discards. Each refresh logs its own decision.
	Log *slog.Logger
	// Metrics receives, per scheduled or shard run, metrics.DueBacklogAge: how long the
	// oldest due installation had waited when the run started (the backlog alarm's metric).
	Metrics *metrics.Emitter
	// WebhookChecks, when set, queues the daily webhook health checks of the shards whose hour
	// it is, after each scheduled run's refreshes (webhookcheck.Sweep).
	WebhookChecks *webhookcheck.Sweep
	// Configured reports whether the app's client credentials are set; an error wrapping
	// clientcreds.ErrNotConfigured (a first deploy, before `pdctl setup`) makes every
	// invocation a no-op answered {"not_configured":true} without an error: wire.Load logged
	// it once at the cold start, and nothing is due before the first install anyway. Other
	// errors do not stop the run (each refresh reports its own). Nil: always configured.
	Configured func(ctx context.Context) error
}

// Summary is the function's result and the run's log event: the counts of refresh.Summary (due,
// refreshed, fresh, …, skipped), and for a manual run the single refresh's outcome.
type Summary struct {
	// Mode is "schedule", "shard" (a fanned-out invocation) or "manual".
	Mode string `json:"mode"`
	// Shard is the shard of a "shard" run.
	Shard int `json:"shard,omitempty"`
	// FannedOut is how many shards a scheduled run handed to other invocations.
	FannedOut int `json:"fanned_out,omitempty"`
	refresh.Summary
	// Outcome and Reason are the single refresh's, for a manual run.
	Outcome refresh.Outcome `json:"outcome,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	// WebhookChecks is what a scheduled run's webhook-check sweep queued.
	WebhookChecks *webhookcheck.Summary `json:"webhook_checks,omitempty"`
	// NotConfigured: the client id and secret are not set yet; nothing was done.
	NotConfigured bool `json:"not_configured,omitempty"`
}

// Handle runs once, as refresh.ParseInvocation reads the input: a manual refresh of one
// installation, the due installations of one shard ({"shard":n}, what a fanning-out run
// sends), or (the scheduler's payload, {} or empty) everything due.
//
// The error is non-nil only when the run as a whole failed (*refresh.InputError; *RunError when the
// due index is unreadable or the one manual refresh failed), so the function's error metric
// means something; failures of single installations in a scheduled run are counted in the Summary
// and alerted by the refresher.
func (h *Handler) Handle(ctx context.Context, in json.RawMessage) (Summary, error) {
	start := time.Now()
	inv, err := refresh.ParseInvocation(in)
	if err != nil {
		h.logger().LogAttrs(ctx, slog.LevelError, "refresher run rejected",
			slog.String("action", "reject"), slog.String("reason", "bad_input"), slog.String("error", err.Error()))
		return Summary{Mode: "manual"}, err
	}
	manual, isShard, shard := inv.Mode == refresh.ModeManual, inv.Mode == refresh.ModeShard, inv.Shard
	var (
		s   Summary
		rep refresh.Report
	)
	if h.Configured != nil {
		if err := h.Configured(ctx); errors.Is(err, clientcreds.ErrNotConfigured) {
			s = Summary{Mode: "schedule", NotConfigured: true}
			switch {
			case manual:
				s.Mode = "manual"
			case isShard:
				s.Mode, s.Shard = "shard", shard
			}
			return s, nil
		}
	}
	switch {
	case manual:
		s, err = h.one(ctx, inv.ID, inv.Force)
	case isShard:
		s, rep, err = h.due(ctx, shard)
	default:
		s, rep, err = h.due(ctx, refresh.AllShards)
		if h.WebhookChecks != nil {
			// After the refreshes: they are due now, the checks any time in their hour. A
			// failed sweep is logged, not the run's error: the refreshes succeeded.
			sum, cerr := h.WebhookChecks.Run(ctx)
			s.WebhookChecks = &sum
			level := slog.LevelInfo
			attrs := []slog.Attr{slog.String("action", "webhook_checks"), slog.Any("shards", sum.Shards), slog.Int("queued", sum.Queued)}
			if cerr != nil {
				level = slog.LevelError
				attrs = append(attrs, slog.String("error", cerr.Error()))
			}
			if cerr != nil || len(sum.Shards) > 0 {
				h.logger().LogAttrs(ctx, level, "webhook checks queued", attrs...)
			}
		}
	}
	attrs := []slog.Attr{
		slog.String("action", "run"), slog.String("mode", s.Mode),
		slog.Int("due", s.Due), slog.Int("refreshed", s.Refreshed), slog.Int("fresh", s.Fresh),
		slog.Int("lease_held", s.LeaseHeld), slog.Int("needs_reauth", s.NeedsReauth),
		slog.Int("retry_later", s.RetryLater), slog.Int("failed", s.Failed),
		slog.Int("not_active", s.NotActive), slog.Int("skipped", s.Skipped),
		slog.Duration("duration", time.Since(start)),
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", err.Error()))
	} else if s.Failed > 0 || s.Skipped > 0 {
		level = slog.LevelWarn
	}
	if manual {
		attrs = append(attrs, slog.Int64("company_id", inv.ID.CompanyID), slog.Int64("user_id", inv.ID.UserID),
			slog.Bool("force", inv.Force), slog.String("reason", s.Reason))
	} else if err == nil {
		now := h.now()
		age := time.Duration(0)
		if !rep.OldestDue.IsZero() {
			age = max(now.Sub(rep.OldestDue), 0)
		}
		attrs = append(attrs, slog.Float64("oldest_due_age_s", age.Seconds()), slog.Int("fanned_out", rep.FannedOut),
			slog.Int("fanned_out_due", rep.FannedOutDue), slog.Int("shards_busy", rep.ShardsBusy))
		if isShard {
			attrs = append(attrs, slog.Int("shard", shard))
		}
		h.Metrics.Age(rep.OldestDue, now)
	}
	h.logger().LogAttrs(ctx, level, "refresher run", attrs...)
	return s, err
}

// now is the run's clock (Config.Now), for the backlog's age.
func (h *Handler) now() time.Time {
	if h.Config.Now != nil {
		return h.Config.Now()
	}
	return time.Now()
}

// one refreshes a single installation (manual invocation).
func (h *Handler) one(ctx context.Context, id installation.ID, force bool) (Summary, error) {
	s := Summary{Mode: "manual", Summary: refresh.Summary{Due: 1}}
	res, err := h.Refresher.Refresh(ctx, id, force)
	s.Count(res.Outcome)
	s.Outcome, s.Reason = res.Outcome, res.Reason
	if err != nil {
		return s, &RunError{Op: "refresh " + id.String(), Err: err}
	}
	return s, nil
}

// due refreshes everything due now in shard, or in every shard (refresh.Run).
func (h *Handler) due(ctx context.Context, shard int) (Summary, refresh.Report, error) {
	s := Summary{Mode: "schedule"}
	if shard != refresh.AllShards {
		if shard >= h.Store.DueShards() {
			return Summary{Mode: "shard"}, refresh.Report{}, &refresh.InputError{Problem: "shard out of range"}
		}
		s = Summary{Mode: "shard", Shard: shard}
	}
	rep, err := refresh.Run(ctx, h.Store, shard, h.Refresher, h.Config)
	s.Summary, s.FannedOut = rep.Summary, rep.FannedOut
	if err != nil {
		return s, rep, &RunError{Op: "list due installations", Err: err}
	}
	return s, rep, nil
}

func (h *Handler) logger() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}
