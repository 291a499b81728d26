// Package webhookcheck schedules the daily health check of the installations' webhooks: the
// refresher's scheduled run calls Sweep.Run, which queues one check_webhooks job per active
// installation of the refresh-due shards whose hour has come (shard k of n at UTC hour
// k*24/n, so the checks spread over the day), at most once per shard and day. The worker runs
// each job (internal/pdwork.CheckWebhooks): one GET /api/v1/webhooks per installation, and
// repairs and a catch-up only when something is wrong. The job's id names the day, so an
// installation is checked at most once a day however often it is queued.
package webhookcheck

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
)

// Lister lists the active installations of one shard of the refresh-due index;
// *tokenstore.Store satisfies it.
type Lister interface {
	DueShards() int
	DueIn(ctx context.Context, shard int, before time.Time, limit int) ([]installation.DueEntry, error)
}

// Marks remembers that a shard was swept today; *tokenstore.Store satisfies it.
type Marks interface {
	Once(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
}

// Enqueuer queues a job; *jobs.Enqueuer satisfies it.
type Enqueuer interface {
	Enqueue(ctx context.Context, j jobs.Job) error
}

// Defaults of the zero Sweep fields.
const (
	// DefaultLimit bounds the installations listed per shard (the index holds every active
	// installation: at 8 shards, 800,000 installations).
	DefaultLimit = 100_000
	// DefaultConcurrency is how many jobs are queued at once.
	DefaultConcurrency = 16
)

// markTTL keeps a shard's "swept today" mark past the end of its day.
const markTTL = 48 * time.Hour

// Sweep queues the day's check_webhooks jobs of the shards whose hour it is. Store, Marks and
// Jobs are required. Safe for concurrent use; overlapping runs sweep a shard once (Marks).
type Sweep struct {
	Store Lister
	Marks Marks
	Jobs  Enqueuer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Limit and Concurrency: see DefaultLimit and DefaultConcurrency.
	Limit       int
	Concurrency int
}

// Summary is what one Run did.
type Summary struct {
	// Shards are the shards swept by this run (those of the hour not swept yet today).
	Shards []int `json:"shards,omitempty"`
	// Queued counts the check_webhooks jobs queued.
	Queued int `json:"queued"`
}

// ShardHour is the UTC hour at which shard (0 <= shard < n) is checked each day.
func ShardHour(shard, n int) int { return shard * 24 / n }

// Run sweeps the shards of the current UTC hour that were not swept today: it marks the shard
// (Marks.Once, so a second run in the same hour skips it), lists its active installations and
// queues jobs.CheckWebhooks for each with today's date. A shard whose listing or queuing fails
// is left for tomorrow (its mark is set); the error names it, and the jobs queued before the
// failure run.
func (s *Sweep) Run(ctx context.Context) (Summary, error) {
	now := s.now().UTC()
	day := now.Format(time.DateOnly)
	n := s.Store.DueShards()
	var sum Summary
	for shard := range n {
		if ShardHour(shard, n) != now.Hour() {
			continue
		}
		first, err := s.Marks.Once(ctx, "webhookcheck#"+day+"#"+strconv.Itoa(shard), markTTL)
		if err != nil {
			return sum, fmt.Errorf("webhookcheck: mark shard %d: %w", shard, err)
		}
		if !first {
			continue
		}
		sum.Shards = append(sum.Shards, shard)
		// Every active installation is in the index, due at most KeepAlive from now.
		entries, err := s.Store.DueIn(ctx, shard, now.Add(10*installation.KeepAlive), s.limit())
		if err != nil {
			return sum, fmt.Errorf("webhookcheck: list shard %d: %w", shard, err)
		}
		queued, err := s.queue(ctx, entries, day)
		sum.Queued += queued
		if err != nil {
			return sum, fmt.Errorf("webhookcheck: shard %d: %w", shard, err)
		}
	}
	return sum, nil
}

// queue enqueues the day's check of each entry, Concurrency at a time.
func (s *Sweep) queue(ctx context.Context, entries []installation.DueEntry, day string) (int, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.concurrency())
	var mu sync.Mutex
	queued := 0
	for _, e := range entries {
		g.Go(func() error {
			if err := s.Jobs.Enqueue(gctx, jobs.CheckWebhooks(e.ID, day)); err != nil {
				return err
			}
			mu.Lock()
			queued++
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	return queued, err
}

func (s *Sweep) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sweep) limit() int {
	if s.Limit > 0 {
		return s.Limit
	}
	return DefaultLimit
}

func (s *Sweep) concurrency() int {
	if s.Concurrency > 0 {
		return s.Concurrency
	}
	return DefaultConcurrency
}
