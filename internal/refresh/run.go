package refresh

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pdkit/pipedrive-lambda-kit/internal/deadline"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// Lister lists the installations due for a refresh; *tokenstore.Store and refreshtest.Store
// satisfy it. Due returns up to limit ids whose refresh-due time (installation.RefreshDueAt of
// the access token's expiry, or the retry time after a failure) is at or before before, oldest
// first. The list may be stale: RunDue leases each one and skips what is no longer due.
type Lister interface {
	Due(ctx context.Context, before time.Time, limit int) ([]installation.ID, error)
}

// One refreshes one installation; *Refresher satisfies it. It must be safe for concurrent use
// and return a non-nil error only with OutcomeFailed.
type One interface {
	Refresh(ctx context.Context, id installation.ID, force bool) (Result, error)
}

var _ One = (*Refresher)(nil)

// RunConfig is a scheduled run's behaviour, as values; the zero value uses the defaults.
type RunConfig struct {
	// BatchLimit is the most installations one run refreshes (DefaultBatchLimit when zero);
	// the rest stay due for the next run.
	BatchLimit int
	// Concurrency is how many refreshes run at once (DefaultConcurrency when zero).
	Concurrency int
	// DeadlineReserve: no refresh starts when less than this is left before ctx's deadline
	// (DefaultDeadlineReserve when zero), so the ones in flight can finish and their answers
	// be stored. It should exceed one refresh: the OAuth client's timeout plus SaveTimeout.
	DeadlineReserve time.Duration
	// Now is the clock the due list is read at; time.Now when nil.
	Now func() time.Time
}

// Defaults for zero RunConfig fields.
const (
	DefaultBatchLimit      = 500
	DefaultConcurrency     = 8
	DefaultDeadlineReserve = 10 * time.Second
)

// Summary counts the outcomes of a run. The JSON names are the refresher function's result
// fields.
type Summary struct {
	// Due is how many installations the run took on (listed as due, or 1 for one refresh).
	Due         int `json:"due"`
	Refreshed   int `json:"refreshed"`
	Fresh       int `json:"fresh"`
	LeaseHeld   int `json:"lease_held"`
	NeedsReauth int `json:"needs_reauth"`
	RetryLater  int `json:"retry_later"`
	Failed      int `json:"failed"`
	// NotActive counts installations uninstalled, marked for reauthorization or gone since
	// they were listed.
	NotActive int `json:"not_active"`
	// Skipped counts installations not attempted because the deadline was near; they stay
	// due for the next run.
	Skipped int `json:"skipped"`
}

// Count adds one refresh's outcome to its counter (OutcomeNotFound counts as NotActive, an
// unknown outcome as Failed).
func (s *Summary) Count(o Outcome) {
	switch o {
	case OutcomeRefreshed:
		s.Refreshed++
	case OutcomeFresh:
		s.Fresh++
	case OutcomeLeaseHeld:
		s.LeaseHeld++
	case OutcomeNeedsReauth:
		s.NeedsReauth++
	case OutcomeRetryLater:
		s.RetryLater++
	case OutcomeNotActive, OutcomeNotFound:
		s.NotActive++
	case OutcomeSkipped:
		s.Skipped++
	default:
		s.Failed++
	}
}

// RunDue refreshes every installation due now: up to cfg.BatchLimit listed by list, oldest
// first, cfg.Concurrency at a time. No refresh starts once less than cfg.DeadlineReserve is left
// before ctx's deadline (or after ctx ends); those count as Skipped and stay due. Failures of
// single installations are counted, not returned: each refresh has logged and alerted its
// own. The error is non-nil only when the due list could not be read; nothing was refreshed.
func RunDue(ctx context.Context, list Lister, one One, cfg RunConfig) (Summary, error) {
	var s Summary
	// Listed due times already have the lead subtracted: compare with now.
	ids, err := list.Due(ctx, cfg.now(), orDefault(cfg.BatchLimit, DefaultBatchLimit))
	if err != nil {
		return s, fmt.Errorf("refresh: list due installations: %w", err)
	}
	s.Due = len(ids)
	reserve := orDefault(cfg.DeadlineReserve, DefaultDeadlineReserve)
	var (
		mu sync.Mutex
		g  errgroup.Group
	)
	g.SetLimit(orDefault(cfg.Concurrency, DefaultConcurrency))
	for i, id := range ids {
		// Checked after the previous Go returned, i.e. when a slot is free and this one would
		// start now.
		if ctx.Err() != nil || deadline.Short(ctx, reserve) {
			s.Skipped += len(ids) - i
			break
		}
		g.Go(func() error {
			res, _ := one.Refresh(ctx, id, false) // the refresher logs and alerts each failure
			mu.Lock()
			s.Count(res.Outcome)
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait() // the goroutines never return an error
	return s, nil
}

func (c RunConfig) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// orDefault is v when positive, else def.
func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
