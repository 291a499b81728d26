package refreshbench

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh/refreshtest"
)

// Idle is the simulated-clock scenario: Installs installations, Active of them used by a job
// every JobEvery, the rest never; a scheduled run every Schedule. The installs are spread over
// a warm-up of Days before the measured Days, so the measurement sees the steady state (an
// idle installation's keep-alive falls anywhere in the window), not everybody's first hour.
type Idle struct {
	Days, Installs, Active int
	// JobEvery is how often each active installation runs a job (30 minutes when zero).
	JobEvery time.Duration
	// Schedule is the refresher's period (5 minutes when zero).
	Schedule time.Duration
	// CheckEvery, when set, also opens a session for every installation at this period (the
	// daily webhook health check's check_webhooks job, internal/webhookcheck: it needs a
	// usable access token for its GET /api/v1/webhooks, but records no use: jobs.Background),
	// from its install on. Zero: none.
	CheckEvery time.Duration
}

// IdleResult is what the simulated days measured.
type IdleResult struct {
	Idle
	// IdleCalls and ActiveCalls count token calls in the measured window.
	IdleCalls, ActiveCalls int
	// Jobs counts the active installations' jobs in the window; ExpiredOnUse those of them
	// that found the access token expired (not usable) although the installation had run a
	// job within the last hour, and paid an on-demand refresh.
	Jobs, ExpiredOnUse int
	// NeedsReauth counts installations that lost their grant (a refresh token left unused
	// past Pipedrive's 60 days would).
	NeedsReauth int
	// Runs counts the scheduled runs in the window; StoreOps the store's operations in it by
	// name (Get: a job's installation read; Due: a due-list query, one per shard and run;
	// LeaseShard, ReleaseShard; Lease, SaveRefreshed, Release, Reschedule, RecordFailure:
	// a refresh's writes; MarkUse: a job's use mark). Each is one DynamoDB request in
	// tokenstore (a Due query one per page of 1 MB).
	Runs     int
	StoreOps map[string]int
	// Checks counts the health-check sessions in the window.
	Checks int
}

// opsLine lists the store operations per day, by name, in a fixed order.
var opsLine = []string{"Get", "MarkUse", "Due", "LeaseShard", "ReleaseShard", "Lease", "SaveRefreshed", "Release", "Reschedule", "RecordFailure"}

// Line is the scenario's one output line:
//
//	refresh-idle days=30 installs=1000 active=100 token_calls_per_idle_day=… token_calls_per_active_day=… expired_on_use=…
//
// followed by the fleet's totals per day: runs_per_day, jobs_per_day, token_calls_per_day and
// ops_per_day=Get:…,MarkUse:…,Due:…,… (the store's operations, see IdleResult.StoreOps).
func (r IdleResult) Line() string {
	idle := max(r.Installs-r.Active, 1)
	days := float64(max(r.Days, 1))
	var ops strings.Builder
	for i, op := range opsLine {
		if i > 0 {
			ops.WriteByte(',')
		}
		fmt.Fprintf(&ops, "%s:%.1f", op, float64(r.StoreOps[op])/days)
	}
	return fmt.Sprintf("refresh-idle days=%d installs=%d active=%d token_calls_per_idle_day=%.3f token_calls_per_active_day=%.2f expired_on_use=%d"+
		" runs_per_day=%.1f jobs_per_day=%.1f token_calls_per_day=%.1f ops_per_day=%s%s",
		r.Days, r.Installs, r.Active, float64(r.IdleCalls)/float64(idle*r.Days), float64(r.ActiveCalls)/float64(max(r.Active, 1)*r.Days), r.ExpiredOnUse,
		float64(r.Runs)/days, float64(r.Jobs)/days, float64(r.IdleCalls+r.ActiveCalls)/days, ops.String(), r.checksField(days))
}

// checksField is the line's last field when the scenario runs health checks.
func (r IdleResult) checksField(days float64) string {
	if r.CheckEvery <= 0 {
		return ""
	}
	return fmt.Sprintf(" checks_per_day=%.1f", float64(r.Checks)/days)
}

// RunIdle simulates 2×Days minute by minute on a simulated clock shared by the simulator, the
// refresher and the store (refreshtest, in memory: a month of moto requests would take
// hours; the DynamoDB store's writes are the ones the throughput scenarios measure). Jobs open
// the worker's real pdwork Session (load, make usable, record the use); scheduled runs are
// refresh.Run. Token calls are counted at the simulator, store operations at the store. Each
// simulated minute costs the installations installed or running a job in it and the scheduled
// run's due query, not a pass over the whole fleet, so 100,000 installations take minutes.
func RunIdle(ctx context.Context, sc Idle) (IdleResult, error) {
	res := IdleResult{Idle: sc}
	jobEvery, schedule := cmpOr(sc.JobEvery, 30*time.Minute), cmpOr(sc.Schedule, 5*time.Minute)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := pdsim.NewClock(start)
	sim := pdsim.New(pdsim.Config{ClientID: clientID, ClientSecret: clientSecret, RotateRefreshTokens: true, Now: clock.Now})
	hs := httptest.NewServer(sim)
	defer hs.Close()
	sim.SetBaseURL(hs.URL)

	store := &refreshtest.Store{Now: clock.Now}
	r := &refresh.Refresher{
		OAuth: &pdoauth.Client{BaseURL: hs.URL, Credentials: pdoauth.StaticCredentials(clientID, clientSecret), HTTP: hs.Client(), Now: clock.Now, AllowLoopback: true},
		Store: store, Owner: "refresher", Now: clock.Now,
	}
	get := &getter{s: store}
	sessions := &pdwork.Sessions{Installations: get, Refresher: r, Now: clock.Now}

	warmup := time.Duration(sc.Days) * 24 * time.Hour
	end := start.Add(2 * warmup)
	type inst struct {
		id        installation.ID
		active    bool
		installAt time.Time
		nextJob   time.Time
		lastJob   time.Time
		nextCheck time.Time
	}
	insts := make([]*inst, sc.Installs)
	for i := range insts {
		u := user(i)
		if err := sim.AddUser(u); err != nil {
			return res, err
		}
		// Spread over the warm-up; the active ones among the idle ones, every k-th.
		at := start.Add(time.Duration(int64(warmup) * int64(i) / int64(sc.Installs)).Truncate(time.Minute))
		k := sc.Installs / max(sc.Active, 1)
		insts[i] = &inst{id: installation.ID{CompanyID: u.CompanyID, UserID: u.ID}, active: sc.Active > 0 && i%k == 0 && i/k < sc.Active, installAt: at, nextJob: at}
	}
	before := map[string]int{}
	opsBefore := map[string]int{}
	windowStart := start.Add(warmup)
	nextRun := start
	jobSeq := 0
	var active []*inst
	next := 0 // insts are in install order: the next to install
	for now := start; now.Before(end); now = now.Add(time.Minute) {
		if d := now.Sub(clock.Now()); d > 0 {
			clock.Advance(d)
		}
		if now.Equal(windowStart) {
			for k, v := range sim.Counters().TokenByInstallation {
				before[k] = v
			}
			for _, op := range opsLine {
				opsBefore[op] = store.Calls(op)
			}
			opsBefore["Get"] = get.n
		}
		for ; next < len(insts) && !insts[next].installAt.After(now); next++ {
			if err := install(sim, store, insts[next].id, insts[next].installAt); err != nil {
				return res, err
			}
			if insts[next].active {
				active = append(active, insts[next])
			}
			insts[next].nextCheck = insts[next].installAt.Add(sc.CheckEvery)
		}
		for _, in := range insts[:next] {
			if sc.CheckEvery <= 0 {
				break
			}
			if now.Before(in.nextCheck) {
				continue
			}
			if !now.Before(windowStart) {
				res.Checks++
			}
			jobSeq++
			if _, err := sessions.Open(ctx, jobs.Job{ID: fmt.Sprint(jobSeq), Kind: jobs.KindCheckWebhooks, CompanyID: in.id.CompanyID, UserID: in.id.UserID}); err != nil {
				return res, fmt.Errorf("refreshbench: check for %s at %s: %w", in.id, now, err)
			}
			in.nextCheck = now.Add(sc.CheckEvery)
		}
		for _, in := range active {
			if now.Before(in.nextJob) {
				continue
			}
			cur, _ := store.Get(in.id)
			inWindow := !now.Before(windowStart)
			usedRecently := !in.lastJob.IsZero() && now.Sub(in.lastJob) <= time.Hour
			if inWindow {
				res.Jobs++
				if usedRecently && !refresh.Usable(cur, now) {
					res.ExpiredOnUse++
				}
			}
			jobSeq++
			if _, err := sessions.Open(ctx, jobs.Job{ID: fmt.Sprint(jobSeq), Kind: jobs.KindAPICall, CompanyID: in.id.CompanyID, UserID: in.id.UserID}); err != nil {
				return res, fmt.Errorf("refreshbench: job for %s at %s: %w", in.id, now, err)
			}
			in.lastJob, in.nextJob = now, now.Add(jobEvery)
		}
		if !now.Before(nextRun) {
			if _, err := refresh.Run(ctx, store, refresh.AllShards, r, refresh.RunConfig{Now: clock.Now, Shards: store, Owner: "bench"}); err != nil {
				return res, err
			}
			nextRun = now.Add(schedule)
			if !now.Before(windowStart) {
				res.Runs++
			}
		}
	}
	res.StoreOps = map[string]int{}
	for _, op := range opsLine {
		res.StoreOps[op] = store.Calls(op) - opsBefore[op]
	}
	res.StoreOps["Get"] = get.n - opsBefore["Get"]
	after := sim.Counters().TokenByInstallation
	for _, in := range insts {
		calls := after[in.id.String()] - before[in.id.String()]
		if in.active {
			res.ActiveCalls += calls
		} else {
			res.IdleCalls += calls
		}
		if cur, _ := store.Get(in.id); cur.Status != installation.StatusActive {
			res.NeedsReauth++
		}
	}
	return res, nil
}

// install stores a fresh installation as tokenstore.Store.Install does: in use for the first
// hour (the register-webhooks job follows an install).
func install(sim *pdsim.Server, store *refreshtest.Store, id installation.ID, now time.Time) error {
	tok, err := sim.IssueToken(id.UserID)
	if err != nil {
		return err
	}
	store.Put(installation.Installation{
		ID: id, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: tok.APIDomain,
		Scopes: strings.Split(tok.Scope, ","), ExpiresAt: now.Add(time.Duration(tok.ExpiresIn) * time.Second),
		Status: installation.StatusActive, Version: 1, InstalledAt: now, UpdatedAt: now,
		WarmUntil: installation.UseMarkUntil(now),
	})
	return nil
}

// getter adapts refreshtest.Store to pdwork.Installations, counting the reads (the jobs run
// one at a time).
type getter struct {
	s *refreshtest.Store
	n int
}

func (g *getter) Get(_ context.Context, id installation.ID) (installation.Installation, error) {
	g.n++
	in, ok := g.s.Get(id)
	if !ok {
		return in, installation.ErrNotFound
	}
	return in, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func randomSuffix() string { return rand.Text()[:6] }
