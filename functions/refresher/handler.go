package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
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

// Handler refreshes the installations that are due, on the EventBridge Scheduler's call
// (refresh.RunDue), or one installation on a manual invocation. Store and Refresher are
// required, Log is optional. Safe for concurrent use.
type Handler struct {
	// Store lists the installations due (*tokenstore.Store).
	Store refresh.Lister
	// Refresher refreshes one installation (*refresh.Refresher).
	Refresher refresh.One
	// Config bounds a scheduled run; the zero value uses refresh's defaults.
	Config refresh.RunConfig
	// Log receives the run's summary; nil discards. Each refresh logs its own decision.
	Log *slog.Logger
}

// Summary is the function's result and the run's log event: the counts of refresh.Summary (due,
// refreshed, fresh, …, skipped), and for a manual run the single refresh's outcome.
type Summary struct {
	// Mode is "schedule" or "manual".
	Mode string `json:"mode"`
	refresh.Summary
	// Outcome and Reason are the single refresh's, for a manual run.
	Outcome refresh.Outcome `json:"outcome,omitempty"`
	Reason  string          `json:"reason,omitempty"`
}

// manualInput is a manual invocation: {"company_id":…,"user_id":…,"force":true}.
type manualInput struct {
	CompanyID json.RawMessage `json:"company_id"`
	UserID    json.RawMessage `json:"user_id"`
	Force     *bool           `json:"force"`
}

// Handle runs once. An input holding company_id, user_id or force is a manual invocation:
// both ids are required (positive integers, as numbers or strings; installation.ParseNumber),
// force is optional (default false), and nothing else is accepted; malformed input is an
// *InputError. Any other input (the scheduler's payload, {} or empty) refreshes everything due.
//
// The error is non-nil only when the run as a whole failed (*InputError; *RunError when the
// due index is unreadable or the one manual refresh failed), so the function's error metric
// means something; failures of single installations in a scheduled run are counted in the Summary
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

// due refreshes everything due now (refresh.RunDue).
func (h *Handler) due(ctx context.Context) (Summary, error) {
	counts, err := refresh.RunDue(ctx, h.Store, h.Refresher, h.Config)
	s := Summary{Mode: "schedule", Summary: counts}
	if err != nil {
		return s, &RunError{Op: "list due installations", Err: err}
	}
	return s, nil
}

// parseInput tells a manual invocation from the scheduler's and validates the former.
func parseInput(in json.RawMessage) (manual bool, id installation.ID, force bool, err error) {
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
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *int64
	}{{"company_id", m.CompanyID, &id.CompanyID}, {"user_id", m.UserID, &id.UserID}} {
		if *f.dst, err = installation.ParseNumber(f.raw); err != nil {
			// The field's name, never its value.
			problem := f.name + " must be a positive integer"
			if errors.Is(err, installation.ErrIDMissing) {
				problem = f.name + " is required"
			}
			return true, installation.ID{}, false, &InputError{Problem: problem}
		}
	}
	return true, id, m.Force != nil && *m.Force, nil
}

func (h *Handler) logger() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}
