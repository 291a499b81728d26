package worker_test

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// TestJobMetrics reads back the EMF lines of the engine's decisions: Jobs by outcome and
// reason for each, RateLimited for a 429, Pauses for a spent daily budget.
func TestJobMetrics(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	var out bytes.Buffer
	w.engine.Metrics = &metrics.Emitter{Out: lockedWriter{&mu, &out}, Function: "apicall"}
	w.runner.verdict = func(j jobs.Job) worker.Verdict {
		switch j.CompanyID {
		case 1:
			return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: string(pderrors.ReasonRateLimited), Status: http.StatusTooManyRequests, RetryAfter: 2 * time.Second}
		case 2:
			return worker.Verdict{Outcome: worker.OutcomeDeferred, Reason: string(pderrors.ReasonDailyBudget), Status: http.StatusTooManyRequests, RetryAfter: time.Hour}
		}
		return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: "ok", Status: http.StatusOK}
	}
	for _, body := range []string{pauseJob("m1", 1), pauseJob("m2", 2), pauseJob("m3", 3), pauseJob("m3", 3)} {
		if _, err := w.engine.RunJob(t.Context(), []byte(body)); err != nil {
			t.Fatalf("RunJob(%s) = %v", body, err)
		}
	}

	mu.Lock()
	pts, err := metrics.Parse(&out)
	mu.Unlock()
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tests := []struct {
		name string
		dims []metrics.Dim
		want float64
	}{
		{metrics.Jobs, nil, 4},
		{metrics.Jobs, []metrics.Dim{metrics.Outcome("retry"), metrics.Reason("rate_limited")}, 1},
		{metrics.Jobs, []metrics.Dim{metrics.Outcome("deferred"), metrics.Reason("daily_budget_exceeded")}, 1},
		{metrics.Jobs, []metrics.Dim{metrics.Outcome("succeeded")}, 1},
		{metrics.Jobs, []metrics.Dim{metrics.Outcome("duplicate")}, 1},
		{metrics.RateLimited, nil, 2},
		{metrics.Pauses, nil, 1},
	}
	for _, tt := range tests {
		if got := metrics.Sum(pts, tt.name, tt.dims...); got != tt.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tt.name, tt.dims, got, tt.want)
		}
	}
	for _, p := range pts {
		if p.Dims[metrics.DimFunction] != "apicall" || len(p.Dims) > 3 {
			t.Errorf("point %+v: want Function apicall and at most Outcome and Reason besides", p)
		}
	}
}
