package pdwork_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
)

// enqueueReserve puts n api_call jobs of cost 10 (a v2 list) on the queue, with useReserve.
func (w *world) enqueueReserve(prefix string, n int, useReserve bool) {
	w.t.Helper()
	for i := range n {
		b, _ := json.Marshal(jobs.Job{ID: fmt.Sprintf("%s-%d", prefix, i), Kind: jobs.KindAPICall, CompanyID: pdsim.DefaultCompanyID,
			UserID: pdsim.DefaultUserID, Method: "GET", Path: "/api/v2/deals", UseReserve: useReserve})
		if _, err := w.queue.SendMessage(w.t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(jobsURL), MessageBody: aws.String(string(b))}); err != nil {
			w.t.Fatal(err)
		}
	}
}

// TestBudgetReserve: a company's daily budget of 1,000 tokens, a reserve of 20 % (200) and a
// backlog of 100 background jobs of 10 tokens each. The backlog stops with the remaining
// budget just above the reserve (80 jobs done, none dead-lettered, no 429, no attempt spent
// waiting) and waits; jobs that may use the reserve (a person waits for them) still run; past
// the server's midnight the budget returns and the backlog finishes. It holds whether
// Pipedrive sends the budget headers on every answer or on a few (the kit counts its calls'
// costs between them).
func TestBudgetReserve(t *testing.T) {
	for _, tt := range []struct {
		name    string
		omitted float64
	}{
		{"budget headers on every answer", 0},
		{"budget headers on one answer in ten", 0.9},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, pdsim.Config{DailyBudget: 1000, BudgetHeadersOmitted: tt.omitted})
			w.limits.BudgetReserve = 0.2
			start := w.clock.Now() // noon
			w.enqueueReserve("backlog", 100, false)
			w.drainBefore(start.Add(50 * time.Minute))
			b := w.sim.CompanyBudget(pdsim.DefaultCompanyID)
			c := w.sim.Counters()
			if b.Remaining < 200 || b.Remaining >= 200+10*4 {
				t.Errorf("budget left after the backlog = %d, want the reserve 200 untouched, the backlog stopped just above it", b.Remaining)
			}
			if c.APIByStatus[200] < 75 || c.APIByStatus[429] != 0 || len(w.queue.dead) != 0 {
				t.Errorf("answers %v, %d dead letters; want about 80 done, no 429, none dead-lettered", c.APIByStatus, len(w.queue.dead))
			}
			waiting := len(w.queue.msgs)
			if waiting != 100-c.APIByStatus[200] {
				t.Errorf("jobs waiting = %d, want the %d not done", waiting, 100-c.APIByStatus[200])
			}

			// A person waits for these: they may use the reserve.
			before := c.APIByStatus[200]
			w.enqueueReserve("user", 5, true)
			w.drainBefore(start.Add(59 * time.Minute))
			if got := w.sim.Counters().APIByStatus[200] - before; got != 5 {
				t.Errorf("jobs with use_reserve done = %d, want 5", got)
			}

			// The server's midnight: the budget returns, the backlog finishes.
			w.drain(start.Add(13*time.Hour), nil)
			if got := w.sim.Counters().APIByStatus[200]; got != 105 || len(w.queue.dead) != 0 {
				t.Errorf("after midnight: %d done, %d dead letters; want 105 and none", got, len(w.queue.dead))
			}
		})
	}
}

// BenchmarkBudgetReserve: a backlog of 5,000 background jobs (a v2 list each, 10 tokens) for
// one company whose daily budget is 30,000 tokens (one seat of the lowest plan), with the
// template's default reserve of 20 % (6,000), on a fake clock from noon for 59 simulated
// minutes; then 20 jobs with use_reserve. It reports the budget left after the backlog against
// the reserve (it must not be touched), the jobs done and waiting, the 429s and dead letters,
// and the budget left after the use_reserve jobs.
func BenchmarkBudgetReserve(b *testing.B) {
	const (
		backlog = 5000
		budget  = 30000
		reserve = 0.2
		users   = 20
	)
	for b.Loop() {
		w := newWorld(b, pdsim.Config{DailyBudget: budget, RateLimit: 1000})
		w.limits.BudgetReserve = reserve
		start := w.clock.Now()
		w.enqueueReserve("backlog", backlog, false)
		w.drainBefore(start.Add(50 * time.Minute))
		left := w.sim.CompanyBudget(pdsim.DefaultCompanyID).Remaining
		c := w.sim.Counters()
		done := c.APIByStatus[200]
		waiting := len(w.queue.msgs)
		w.enqueueReserve("user", users, true)
		w.drainBefore(start.Add(59 * time.Minute))
		usersDone := w.sim.Counters().APIByStatus[200] - done
		leftAfter := w.sim.CompanyBudget(pdsim.DefaultCompanyID).Remaining
		floor := int(budget * reserve)
		b.ReportMetric(float64(left-floor), "reserve-margin-tokens")
		b.ReportMetric(float64(done), "backlog-done")
		b.Logf("budget reserve: %d background jobs (10 tokens each), company budget %d tokens/day, reserve %.0f%% (%d): "+
			"after 50 simulated min %d done, %d waiting, budget left %d (reserve untouched: %t); 429s %d; dead letters %d; "+
			"then %d use_reserve jobs: %d done, budget left %d",
			backlog, budget, reserve*100, floor, done, waiting, left, left >= floor, c.APIByStatus[429], len(w.queue.dead),
			users, usersDone, leftAfter)
		if left < floor || usersDone != users || len(w.queue.dead) != 0 {
			b.Errorf("budget left %d (reserve %d), use_reserve jobs done %d of %d, dead letters %d: want the reserve untouched, all use_reserve jobs done, none dead",
				left, floor, usersDone, users, len(w.queue.dead))
		}
	}
}
