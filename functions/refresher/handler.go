package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// Store lists the installations due for a refresh; *tokenstore.Store satisfies it. Due returns
// up to limit installations whose refresh_due_at (access expiry minus the store's RefreshLead,
// or the retry time after a failure) is at or before before, oldest first.
type Store interface {
	Due(ctx context.Context, before time.Time, limit int) ([]tokenstore.InstallationID, error)
}

// Refresher refreshes one installation; *refresh.Refresher satisfies it. It must be safe for
// concurrent use and return a non-nil error only with refresh.OutcomeFailed.
type Refresher interface {
	Refresh(ctx context.Context, id tokenstore.InstallationID, force bool) (refresh.Result, error)
}

// Config is the handler's behaviour, as values.
type Config struct {
	// BatchLimit is the most installations one run refreshes (DefaultBatchLimit when zero);
	// the rest stay due for the next run.
	BatchLimit int
	// Concurrency is how many refreshes run at once (DefaultConcurrency when zero).
	Concurrency int
	// DeadlineReserve: no refresh starts when less than this is left before the invocation's
	// deadline (DefaultDeadlineReserve when zero), so the ones in flight can finish and their
	// answers be stored. It should exceed one refresh: the OAuth client's timeout plus the
	// refresher's SaveTimeout.
	DeadlineReserve time.Duration
	// Now is the clock Due compares with; time.Now when nil.
	Now func() time.Time
}

// Defaults for zero Config fields.
const (
	DefaultBatchLimit      = 500
	DefaultConcurrency     = 8
	DefaultDeadlineReserve = 10 * time.Second
)

// ErrBadInput matches (errors.Is) every *InputError.
var ErrBadInput = errors.New("refresher: malformed input")

// InputError is returned for a malformed manual invocation; Lambda reports its errorType as
// "InputError". Problem never quotes more of the input than a field name.
type InputError struct{ Problem string }

// Error describes the problem; it quotes no input beyond a field name.
func (e *InputError) Error() string { return "refresher: malformed input: " + e.Problem }

// Is makes errors.Is(err, ErrBadInput) true.
func (e *InputError) Is(target error) bool { return target == ErrBadInput }

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

// Handler refreshes the installations that are due, on the EventBridge Scheduler's call, or one
// installation on a manual invocation. Store and Refresher are required, Log is optional.
// Safe for concurrent use.
type Handler struct {
	Store     Store
	Refresher Refresher
	Config    Config
	// Log receives the run's summary; nil discards. Each refresh logs its own decision.
	Log *slog.Logger
}

// Summary counts what one run did; it is the function's result and the run's log event.
type Summary struct {
	// Mode is "schedule" or "manual".
	Mode string `json:"mode"`
	// Due is how many installations Due listed (1 for a manual run).
	Due         int `json:"due"`
	Refreshed   int `json:"refreshed"`
	Fresh       int `json:"fresh"`
	LeaseHeld   int `json:"lease_held"`
	NeedsReauth int `json:"needs_reauth"`
	RetryLater  int `json:"retry_later"`
	Failed      int `json:"failed"`
	// NotActive counts installations uninstalled, marked for reauthorization or gone since
	// the index listed them.
	NotActive int `json:"not_active"`
	// Skipped counts installations not attempted because the deadline was near; they stay
	// due for the next run.
	Skipped int `json:"skipped"`
	// Outcome and Reason are the single refresh's, for a manual run.
	Outcome refresh.Outcome `json:"outcome,omitempty"`
	Reason  string          `json:"reason,omitempty"`
}

// count adds one result.
func (s *Summary) count(o refresh.Outcome) {
	switch o {
	case refresh.OutcomeRefreshed:
		s.Refreshed++
	case refresh.OutcomeFresh:
		s.Fresh++
	case refresh.OutcomeLeaseHeld:
		s.LeaseHeld++
	case refresh.OutcomeNeedsReauth:
		s.NeedsReauth++
	case refresh.OutcomeRetryLater:
		s.RetryLater++
	case refresh.OutcomeNotActive, refresh.OutcomeNotFound:
		s.NotActive++
	case refresh.OutcomeSkipped:
		s.Skipped++
	default:
		s.Failed++
	}
}

// manualInput is a manual invocation: {"company_id":…,"user_id":…,"force":true}.
type manualInput struct {
	CompanyID json.RawMessage `json:"company_id"`
	UserID    json.RawMessage `json:"user_id"`
	Force     *bool           `json:"force"`
}

// Handle runs once. An input holding company_id, user_id or force is a manual invocation:
// both ids are required (positive integers, as numbers or strings), force is optional
// (default false), and nothing else is accepted; malformed input is an *InputError. Any other input (the scheduler's payload, {} or empty) refreshes everything due.
//
// The error is non-nil only when the run as a whole failed (*InputError; *RunError when the
// due index is unreadable or the one manual refresh failed), so the function's error metric means
// something; failures of single installations in a scheduled run are counted in the Summary
// and alerted by the refresher.
func (h *Handler) Handle(ctx context.Context, in json.RawMessage) (Summary, error) {
	start := time.Now()
	manual, id, force, err := parseInput(in)
	if err != nil {
		h.logger().LogAttrs(ctx, slog.LevelError, "refresher run rejected",
			slog.String("action", "reject"), slog.String("reason", "bad_input"), slog.String("error", err.Error()))
		return Summary{Mode: "manual"}, err
	}
	var s Summary
	if manual {
		s, err = h.one(ctx, id, force)
	} else {
		s, err = h.due(ctx)
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
		attrs = append(attrs, slog.Int64("company_id", id.CompanyID), slog.Int64("user_id", id.UserID),
			slog.Bool("force", force), slog.String("reason", s.Reason))
	}
	h.logger().LogAttrs(ctx, level, "refresher run", attrs...)
	return s, err
}

// one refreshes a single installation (manual invocation).
func (h *Handler) one(ctx context.Context, id tokenstore.InstallationID, force bool) (Summary, error) {
	s := Summary{Mode: "manual", Due: 1}
	res, err := h.Refresher.Refresh(ctx, id, force)
	s.count(res.Outcome)
	s.Outcome, s.Reason = res.Outcome, res.Reason
	if err != nil {
		return s, &RunError{Op: "refresh " + id.String(), Err: err}
	}
	return s, nil
}

// due refreshes everything due now, with bounded concurrency, until the deadline is near.
func (h *Handler) due(ctx context.Context) (Summary, error) {
	s := Summary{Mode: "schedule"}
	// refresh_due_at already has the store's RefreshLead subtracted: compare with now.
	ids, err := h.Store.Due(ctx, h.now(), h.batchLimit())
	if err != nil {
		return s, &RunError{Op: "list due installations", Err: err}
	}
	s.Due = len(ids)

	var (
		mu sync.Mutex
		g  errgroup.Group
	)
	g.SetLimit(h.concurrency())
	for i, id := range ids {
		// Checked after the previous Go returned, i.e. when a slot is free and this one would
		// start now.
		if ctx.Err() != nil || h.nearDeadline(ctx) {
			s.Skipped += len(ids) - i
			break
		}
		g.Go(func() error {
			res, _ := h.Refresher.Refresh(ctx, id, false) // the refresher logs and alerts each failure
			mu.Lock()
			s.count(res.Outcome)
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait() // the goroutines never return an error
	return s, nil
}

// nearDeadline reports whether less than DeadlineReserve is left before ctx's deadline.
func (h *Handler) nearDeadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < h.deadlineReserve()
}

// parseInput tells a manual invocation from the scheduler's and validates the former.
func parseInput(in json.RawMessage) (manual bool, id tokenstore.InstallationID, force bool, err error) {
	in = bytes.TrimSpace(in)
	if len(in) == 0 || bytes.Equal(in, []byte("null")) {
		return false, id, false, nil
	}
	if !json.Valid(in) {
		return false, id, false, &InputError{Problem: "not JSON"}
	}
	var keys map[string]json.RawMessage
	if in[0] != '{' || json.Unmarshal(in, &keys) != nil {
		return false, id, false, nil // a scheduler payload that is not an object
	}
	_, hasCompany := keys["company_id"]
	_, hasUser := keys["user_id"]
	_, hasForce := keys["force"]
	if !hasCompany && !hasUser && !hasForce {
		return false, id, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.DisallowUnknownFields()
	var m manualInput
	if err := dec.Decode(&m); err != nil {
		return true, id, false, &InputError{Problem: `want {"company_id":<id>,"user_id":<id>,"force":<bool>}: ` + err.Error()}
	}
	if id.CompanyID, err = parseID("company_id", m.CompanyID); err != nil {
		return true, id, false, err
	}
	if id.UserID, err = parseID("user_id", m.UserID); err != nil {
		return true, id, false, err
	}
	return true, id, m.Force != nil && *m.Force, nil
}

// parseID reads a positive integer id given as a JSON number or a string of digits.
func parseID(name string, raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, &InputError{Problem: name + " is required"}
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, &InputError{Problem: name + " is not a string or a number"}
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, &InputError{Problem: name + " must be a positive integer"}
	}
	return n, nil
}

func (h *Handler) now() time.Time {
	if h.Config.Now != nil {
		return h.Config.Now()
	}
	return time.Now()
}

func (h *Handler) batchLimit() int {
	if h.Config.BatchLimit > 0 {
		return h.Config.BatchLimit
	}
	return DefaultBatchLimit
}

func (h *Handler) concurrency() int {
	if h.Config.Concurrency > 0 {
		return h.Config.Concurrency
	}
	return DefaultConcurrency
}

func (h *Handler) deadlineReserve() time.Duration {
	if h.Config.DeadlineReserve > 0 {
		return h.Config.DeadlineReserve
	}
	return DefaultDeadlineReserve
}

func (h *Handler) logger() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}
