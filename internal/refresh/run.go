package refresh

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pdkit/pipedrive-lambda-kit/internal/deadline"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// Lister lists the installations due for a refresh, one shard of the due list at a time;
// *tokenstore.Store and refreshtest.Store satisfy it. The shards partition the installations
// (each is in exactly one), so runs over different shards never meet. DueIn returns up to
// limit installations of shard (0 <= shard < DueShards()) whose refresh-due time (the due
// rule, installation.NextRefresh, or the retry time after a failure) is at or before before,
// oldest first, with that time. The list may be stale: a run leases each installation and
// skips what is no longer due.
type Lister interface {
	DueShards() int
	DueIn(ctx context.Context, shard int, before time.Time, limit int) ([]installation.DueEntry, error)
}

// ShardLeases lets concurrent runs split the due list by shard instead of racing for every
// installation in it (each lost race costs store requests); *tokenstore.Store and
// refreshtest.Store satisfy it. LeaseShard claims shard for owner until now+ttl, or returns an
// error matching installation.ErrLeaseHeld while another owner's claim lasts; ReleaseShard
// gives owner's claim up. Installations are still leased one by one: shard claims only save
// work, they do not make refreshes safe.
type ShardLeases interface {
	LeaseShard(ctx context.Context, shard int, owner string, ttl time.Duration) error
	ReleaseShard(ctx context.Context, shard int, owner string) error
}

// FanOut hands one shard of the due list to another invocation of the refresher, which runs
// Run over that shard; functions/refresher invokes itself asynchronously. Dispatch returns
// once the other run is started (not finished); an error means it was not.
type FanOut interface {
	Dispatch(ctx context.Context, shard int) error
}

// One refreshes one installation; *Refresher satisfies it. It must be safe for concurrent use
// and return a non-nil error only with OutcomeFailed.
type One interface {
	Refresh(ctx context.Context, id installation.ID, force bool) (Result, error)
}

var _ One = (*Refresher)(nil)

// AllShards makes Run work every shard of the due list (a scheduled run).
const AllShards = -1

// RunConfig is a scheduled run's behaviour, as values; the zero value uses the defaults.
type RunConfig struct {
	// BatchLimit, when positive, caps how many installations one run takes on (the oldest;
	// the rest stay due). Zero: no cap, the run refreshes until its deadline reserve.
	BatchLimit int
	// Concurrency is how many refreshes run at once (DefaultConcurrency when zero); the
	// refresher function reads it from template.yaml (REFRESH_CONCURRENCY).
	Concurrency int
	// DeadlineReserve: no refresh starts when less than this is left before ctx's deadline
	// (DefaultDeadlineReserve when zero), so the ones in flight can finish and their answers
	// be stored. It should exceed one refresh: the OAuth client's timeout plus SaveTimeout.
	DeadlineReserve time.Duration
	// Shards, when set, claims each shard before listing it: of several runs at once, one
	// works a shard and the others skip it with one request. Nil: no claims.
	Shards ShardLeases
	// Owner names this run in shard claims (a random suffix is added per run).
	Owner string
	// ShardLeaseTTL is how long a shard claim lasts: until ctx's deadline when zero (or
	// DefaultShardLeaseTTL without a deadline), so a crashed run's claims free themselves.
	ShardLeaseTTL time.Duration
	// FanOut, when set, takes over a run over AllShards with more than FanOutAbove
	// installations due: each shard goes to its own invocation (FanOut.Dispatch) and the
	// shards refresh in parallel. A shard whose dispatch fails is refreshed here.
	FanOut FanOut
	// FanOutAbove is the due count above which a run fans out (DefaultFanOutAbove when zero).
	FanOutAbove int
	// Now is the clock the due list is read at; time.Now when nil.
	Now func() time.Time
}

// Defaults for zero RunConfig fields.
const (
	DefaultConcurrency     = 8
	DefaultDeadlineReserve = 10 * time.Second
	DefaultShardLeaseTTL   = 2 * time.Minute
	// DefaultFanOutAbove is about what one run does in half of a 2-minute invocation at
	// concurrency 8 and 200 ms per token call (8 / 0.2 s × 50 s).
	DefaultFanOutAbove = 2000
)

// Summary counts the outcomes of a run. The JSON names are the refresher function's result
// fields.
type Summary struct {
	// Due is how many installations the run took on (listed as due, or 1 for one refresh);
	// installations of shards handed to other invocations are not counted.
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

// Report is what Run did: the Summary of the installations it refreshed itself, and what the
// operators watch.
type Report struct {
	Summary
	// OldestDue is when the installation due longest (of the shards this run listed) became
	// due, read at the start of the run; zero when none was due. The refresher publishes its
	// age: older than one schedule period means the previous runs left a backlog.
	OldestDue time.Time
	// FannedOut is how many shards went to other invocations, FannedOutDue how many
	// installations were due in them.
	FannedOut    int
	FannedOutDue int
	// ShardsBusy is how many shards another run had claimed, so this one left them alone.
	ShardsBusy int
}

// RunDue is Run over AllShards, returning its Summary.
func RunDue(ctx context.Context, list Lister, one One, cfg RunConfig) (Summary, error) {
	rep, err := Run(ctx, list, AllShards, one, cfg)
	return rep.Summary, err
}

// Run refreshes the installations due now in shard, or in every shard with AllShards: it
// claims the shards (cfg.Shards), lists what is due in them, oldest first, and refreshes it
// cfg.Concurrency at a time until everything is done or less than cfg.DeadlineReserve is left
// before ctx's deadline (what is left counts as Skipped and stays due). There is no other
// ceiling: with more due than cfg.FanOutAbove and a cfg.FanOut, a run over AllShards hands
// each shard to its own invocation instead. Failures of single installations are counted,
// not returned: each refresh has logged and alerted its own. The error is non-nil only when
// the due list could not be read; nothing was refreshed then.
func Run(ctx context.Context, list Lister, shard int, one One, cfg RunConfig) (Report, error) {
	var rep Report
	shards := []int{shard}
	if shard == AllShards {
		shards = make([]int, list.DueShards())
		for i := range shards {
			shards[i] = i
		}
	}
	owner := cfg.Owner + "/run-" + rand.Text()[:8]
	claimed := shards
	if cfg.Shards != nil {
		claimed = nil
		ttl := cfg.shardLeaseTTL(ctx)
		for _, k := range shards {
			err := cfg.Shards.LeaseShard(ctx, k, owner, ttl)
			switch {
			case errors.Is(err, installation.ErrLeaseHeld):
				rep.ShardsBusy++
				continue
			case err != nil:
				release(ctx, cfg.Shards, claimed, owner)
				return rep, fmt.Errorf("refresh: claim due shard %d: %w", k, err)
			}
			claimed = append(claimed, k)
		}
		defer func() { release(ctx, cfg.Shards, claimed, owner) }()
	}

	now := cfg.now()
	limit := math.MaxInt32
	if cfg.BatchLimit > 0 {
		limit = cfg.BatchLimit
	}
	perShard := make([][]installation.DueEntry, len(claimed))
	g, gctx := errgroup.WithContext(ctx)
	for i, k := range claimed {
		g.Go(func() error {
			var err error
			perShard[i], err = list.DueIn(gctx, k, now, limit)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return rep, fmt.Errorf("refresh: list due installations: %w", err)
	}
	var due []installation.DueEntry
	for _, es := range perShard {
		due = append(due, es...)
	}
	sortDue(due)
	if len(due) > limit {
		due = due[:limit]
	}
	if len(due) > 0 {
		rep.OldestDue = due[0].DueAt
	}

	if shard == AllShards && cfg.FanOut != nil && len(due) > orDefault(cfg.FanOutAbove, DefaultFanOutAbove) {
		due = fanOut(ctx, cfg, &rep, claimed, perShard, owner)
		claimed = nil // fanOut released every claim
	}

	rep.Due = len(due)
	reserve := orDefault(cfg.DeadlineReserve, DefaultDeadlineReserve)
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		slots = make(chan struct{}, orDefault(cfg.Concurrency, DefaultConcurrency))
	)
	for i, e := range due {
		slots <- struct{}{}
		// Checked once a slot is free, i.e. when this refresh would start now.
		if ctx.Err() != nil || deadline.Short(ctx, reserve) {
			<-slots
			rep.Skipped += len(due) - i
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			res, _ := one.Refresh(ctx, e.ID, false) // the refresher logs and alerts each failure
			mu.Lock()
			rep.Count(res.Outcome)
			mu.Unlock()
		})
	}
	wg.Wait()
	return rep, nil
}

// fanOut releases each claimed shard and dispatches it to another invocation (which claims
// it itself); it returns the entries of the shards that could not be dispatched, to refresh
// here.
func fanOut(ctx context.Context, cfg RunConfig, rep *Report, claimed []int, perShard [][]installation.DueEntry, owner string) []installation.DueEntry {
	var local []installation.DueEntry
	if cfg.Shards != nil {
		// The other invocations claim their shard themselves.
		release(ctx, cfg.Shards, claimed, owner)
	}
	for i, k := range claimed {
		if len(perShard[i]) == 0 {
			continue
		}
		if err := cfg.FanOut.Dispatch(ctx, k); err != nil {
			local = append(local, perShard[i]...)
			continue
		}
		rep.FannedOut++
		rep.FannedOutDue += len(perShard[i])
	}
	sortDue(local)
	return local
}

func sortDue(due []installation.DueEntry) {
	slices.SortFunc(due, func(a, b installation.DueEntry) int {
		return cmp.Or(a.DueAt.Compare(b.DueAt),
			cmp.Compare(a.ID.CompanyID, b.ID.CompanyID), cmp.Compare(a.ID.UserID, b.ID.UserID))
	})
}

// release gives up owner's claims on shards, detached from ctx (a run ending at its deadline
// still frees its shards); a failure leaves the claim to expire.
func release(ctx context.Context, leases ShardLeases, shards []int, owner string) {
	rctx, cancel := deadline.Detached(ctx, DefaultSaveTimeout)
	defer cancel()
	for _, k := range shards {
		_ = leases.ReleaseShard(rctx, k, owner)
	}
}

func (c RunConfig) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c RunConfig) shardLeaseTTL(ctx context.Context) time.Duration {
	if c.ShardLeaseTTL > 0 {
		return c.ShardLeaseTTL
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) > 0 {
		return time.Until(dl) + time.Second
	}
	return DefaultShardLeaseTTL
}

// orDefault is v when positive, else def.
func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
