package pdwork_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// penaltyLimit is the burst limit of the penalty tests' simulator.
const penaltyLimit = 80

// penaltyWorld is a world whose installation's token window a raw caller (no pacing) has
// filled, so that the next call walks into Pipedrive's burst penalty (Retry-After: 10).
type penaltyWorld struct {
	*world
	in  installation.Installation
	api *pdapi.Client
	job jobs.Job
}

func newPenaltyWorld(t *testing.T) *penaltyWorld {
	t.Helper()
	w := newWorld(t, pdsim.Config{RateLimit: penaltyLimit})
	in, err := w.store.Get(t.Context(), installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID})
	if err != nil {
		t.Fatal(err)
	}
	p := &penaltyWorld{world: w, in: in, api: &pdapi.Client{HTTP: w.sim.HTTP.Client()},
		job: jobs.Job{ID: "penalty", Kind: jobs.KindAPICall, CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}}
	for range penaltyLimit {
		if _, err := p.api.Do(t.Context(), "GET", in.APIDomain, "/api/v2/deals", in.AccessToken, nil); err != nil {
			t.Fatalf("filling the window: %v", err)
		}
	}
	return p
}

// provoke makes one call through l into the full window: it is answered the penalty.
func (p *penaltyWorld) provoke(t *testing.T, l *pdwork.Limits) {
	t.Helper()
	done, v := l.Acquire(t.Context(), p.job, "GET", "/api/v2/deals")
	if v != nil {
		t.Fatalf("first Acquire = %+v, want a slot", *v)
	}
	if d := p.call(t, done); d.Status != 429 || d.Reason != pderrors.ReasonRateLimited || d.RetryAfter != 10*time.Second {
		t.Fatalf("call into the full window = %d %s after %s, want 429 rate_limited after 10 s (the penalty)", d.Status, d.Reason, d.RetryAfter)
	}
}

// call makes one call of the installation's token and reports its answer to done.
func (p *penaltyWorld) call(t *testing.T, done func(h http.Header, d pderrors.Decision)) pderrors.Decision {
	t.Helper()
	resp, err := p.api.Do(t.Context(), "GET", p.in.APIDomain, "/api/v2/deals", p.in.AccessToken, nil)
	d := pderrors.DecisionOf(err)
	done(resp.Header, d)
	return d
}

// sleeps records a Limits' in-process waits without moving the clock.
type sleeps struct {
	mu  sync.Mutex
	got []time.Duration
}

func (s *sleeps) Sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, d)
	return nil
}

func (s *sleeps) last() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) == 0 {
		return 0
	}
	return s.got[len(s.got)-1]
}

// TestBurstPenaltyIsHeld: a paced call answered Pipedrive's burst penalty (429, Retry-After:
// 10) holds the token for all of it. A job asking for a slot at that instant waits exactly
// the in-process cap (DefaultMaxWait, 10 s: the boundary waits) and calls when the penalty
// ends; the jobs after it, whose slots lie beyond the cap, are deferred (no attempt spent),
// each coming back a slot's spacing after the one before, not all at the penalty's end. The
// hold is written once to the company's gate record, and another instance that never called
// waits for it without calling into the penalty.
func TestBurstPenaltyIsHeld(t *testing.T) {
	p := newPenaltyWorld(t)
	s := &sleeps{}
	l := &pdwork.Limits{Gates: p.store, Now: p.clock.Now, Sleep: s.Sleep, Log: runLogger()}
	start := p.clock.Now()
	p.provoke(t, l)

	done, v := l.Acquire(t.Context(), p.job, "GET", "/api/v2/deals")
	if v != nil {
		t.Fatalf("Acquire at the penalty's start = %+v, want an in-process wait of exactly %s", *v, pdwork.DefaultMaxWait)
	}
	if got := s.last(); got != pdwork.DefaultMaxWait {
		t.Errorf("in-process wait = %s, want %s (the penalty, equal to the cap)", got, pdwork.DefaultMaxWait)
	}
	var retries []time.Duration
	for range 6 {
		_, v := l.Acquire(t.Context(), p.job, "GET", "/api/v2/deals")
		if v == nil || v.Outcome != worker.OutcomeDeferred || v.Reason != pdwork.ReasonPaced || v.RetryAfter <= pdwork.DefaultMaxWait {
			t.Fatalf("Acquire beyond the cap = %+v, want deferred (rate_paced) for more than %s", v, pdwork.DefaultMaxWait)
		}
		retries = append(retries, v.RetryAfter)
	}
	for i := 1; i < len(retries); i++ {
		if gap := retries[i] - retries[i-1]; gap < 2*time.Second/penaltyLimit {
			t.Errorf("deferrals come back %v: %s apart at %d, want at least a slot (%s) apart", retries, gap, i, 2*time.Second/penaltyLimit)
		}
	}

	g, err := p.store.Gate(t.Context(), pdsim.DefaultCompanyID)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Holds[tokenstore.HoldKey(pdsim.DefaultUserID, false)]; !got.Equal(start.Add(10 * time.Second)) {
		t.Errorf("gate record hold = %s, want the penalty's end %s", got, start.Add(10*time.Second))
	}

	// Another instance, one second later: it learns the hold from the gate record.
	p.clock.Advance(time.Second)
	s2 := &sleeps{}
	l2 := &pdwork.Limits{Gates: p.store, Now: p.clock.Now, Sleep: s2.Sleep, Log: runLogger()}
	if _, v := l2.Admit(t.Context(), p.job); v != nil {
		t.Fatalf("Admit = %+v, want admitted (a hold is not a pause)", *v)
	}
	done2, v := l2.Acquire(t.Context(), p.job, "GET", "/api/v2/deals")
	if v != nil || s2.last() != 9*time.Second {
		t.Fatalf("other instance: Acquire = %+v after an in-process wait of %s, want a wait of 9 s", v, s2.last())
	}

	// The penalty ends: both waiting calls are served.
	p.clock.Set(start.Add(10 * time.Second))
	if d := p.call(t, done); d.Status != 0 && d.Action != pderrors.Succeed {
		t.Errorf("call at the penalty's end = %d %s, want served", d.Status, d.Reason)
	}
	p.clock.Advance(time.Second / penaltyLimit)
	if d := p.call(t, done2); d.Status != 0 && d.Action != pderrors.Succeed {
		t.Errorf("other instance's call after the penalty = %d %s, want served", d.Status, d.Reason)
	}
	if got := p.sim.Counters().APIByStatus[429]; got != 1 {
		t.Errorf("429s = %d, want 1 (only the call that met the penalty)", got)
	}
}

// TestBurstPenaltyCostsJobsNoAttempts: 60 jobs queued behind a penalty (their token's
// window refused the call before them) wait it out, in-process or deferred, and are all done
// without one of them being answered 429 (none spends an attempt on it), none before the
// penalty ends and within a few seconds of it; two worker instances resume without earning a
// second penalty.
func TestBurstPenaltyCostsJobsNoAttempts(t *testing.T) {
	p := newPenaltyWorld(t)
	start := p.clock.Now()
	p.provoke(t, p.limits)
	raw := p.sim.Counters().APIByStatus[200]
	const n = 60
	p.enqueue("held", n, "GET", "/api/v2/deals")
	// A second instance sharing the queue, the store and the clock, with its own Limits.
	other := *p.engine
	otherLimits := &pdwork.Limits{Gates: p.store, Now: p.clock.Now, Sleep: p.limits.Sleep, Log: runLogger()}
	sessions := *p.engine.Runners[jobs.KindAPICall].(*pdwork.APICall).Sessions
	sessions.Limits = otherLimits
	other.Runners = map[string]worker.Runner{jobs.KindAPICall: &pdwork.APICall{Sessions: &sessions}}
	engines := []*worker.Engine{p.engine, &other}
	var firstServed time.Time
	for i := 0; p.clock.Now().Before(start.Add(time.Hour)); i++ {
		ev, ok := p.queue.next(10)
		if !ok {
			break
		}
		if len(ev.Records) == 0 {
			continue
		}
		p.queue.settle(ev, engines[i%2].RunBatch(t.Context(), ev))
		if firstServed.IsZero() && p.sim.Counters().APIByStatus[200] > raw {
			firstServed = p.clock.Now()
		}
	}
	c := p.sim.Counters()
	if c.APIByStatus[200]-raw != n || c.APIByStatus[429] != 1 || len(p.queue.dead) != 0 {
		t.Errorf("answers %v, %d dead letters; want %d answered 200, the one 429 that met the penalty, none dead-lettered", c.APIByStatus, len(p.queue.dead), n)
	}
	if firstServed.Before(start.Add(10 * time.Second)) {
		t.Errorf("first job served at +%s, want after the penalty (+10 s)", firstServed.Sub(start))
	}
	if took := p.clock.Now().Sub(start); took > 20*time.Second {
		t.Errorf("%d jobs behind the penalty took %s, want within 20 s (10 s penalty, then the window's pace)", n, took)
	}
}
