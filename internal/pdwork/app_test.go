package pdwork_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// markCounter is the real claims store, counting the marks made before unrepeatable calls.
type markCounter struct {
	worker.Claims
	marks atomic.Int32
}

func (m *markCounter) MarkWorkCalling(ctx context.Context, key, owner string) error {
	m.marks.Add(1)
	return m.Claims.MarkWorkCalling(ctx, key, owner)
}

// TestAppCallsMarkTheClaimBeforeAnUnrepeatablePOST: an app's job that POSTs without marking it
// retry-safe has its claim marked before the call (so a run that dies during it ends as
// outcome_unknown, not a second POST); a retry-safe POST or a GET is not marked. Each row runs
// one app job through the engine, against the simulator.
func TestAppCallsMarkTheClaimBeforeAnUnrepeatablePOST(t *testing.T) {
	s, _ := sessions(t)
	store := s.Installations.(*tokenstore.Store)
	id := installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
	tests := []struct {
		name      string
		method    string
		retrySafe bool
		wantMarks int32
	}{
		{"POST not marked retry-safe", http.MethodPost, false, 1},
		{"POST marked retry-safe", http.MethodPost, true, 0},
		{"GET", http.MethodGet, false, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := &markCounter{Claims: store}
			call := func(ctx context.Context, _ jobs.Job, c *pdwork.Client) error {
				path, body := "/api/v2/deals", []byte(`{"title":"From the app"}`)
				if tt.method == http.MethodGet {
					body = nil
				}
				_, err := c.Do(ctx, tt.method, path, body, tt.retrySafe)
				return err
			}
			e := &worker.Engine{Name: "app-test", Claims: claims,
				Runners: map[string]worker.Runner{jobs.AppKind("x"): &pdwork.AppJobs{Sessions: s, Func: call}}}
			raw, _ := json.Marshal(jobs.AppJob("x", id, "row-"+strconv.Itoa(i), nil))
			res, err := e.RunJob(t.Context(), raw)
			if err != nil || res.Outcome != worker.OutcomeSucceeded {
				t.Fatalf("RunJob = %+v, %v; want succeeded", res, err)
			}
			if got := claims.marks.Load(); got != tt.wantMarks {
				t.Errorf("claim marks = %d, want %d", got, tt.wantMarks)
			}
		})
	}
}

// TestAppVerdicts: what the worker decides from the app's code's answer.
func TestAppVerdicts(t *testing.T) {
	s, sim := sessions(t)
	id := installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
	tests := []struct {
		name       string
		fault      *pdsim.Fault
		appErr     error
		wantOut    worker.Outcome
		wantReason string
	}{
		{"nil: done", nil, nil, worker.OutcomeSucceeded, pdwork.ReasonAppDone},
		{"the app's own error: retried", nil, errors.New("database down"), worker.OutcomeRetry, pdwork.ReasonAppFailed},
		{"a 429 on the call: retried at Pipedrive's time", &pdsim.Fault{Method: "GET", Path: "/api/v2/deals", Status: 429, Times: 1,
			Header: http.Header{"Retry-After": {"7"}}}, nil, worker.OutcomeRetry, "rate_limited"},
		{"a 404 on the call: dead-lettered", &pdsim.Fault{Method: "GET", Path: "/api/v2/deals", Status: 404, Times: 1}, nil, worker.OutcomeDeadLettered, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != nil {
				sim.Inject(*tt.fault)
			}
			r := &pdwork.AppJobs{Sessions: s, Func: func(ctx context.Context, _ jobs.Job, c *pdwork.Client) error {
				if tt.appErr != nil {
					return tt.appErr
				}
				_, err := c.Do(ctx, http.MethodGet, "/api/v2/deals", nil, false)
				return err
			}}
			v := r.Run(t.Context(), jobs.AppJob("x", id, "k", nil))
			if v.Outcome != tt.wantOut || v.Reason != tt.wantReason {
				t.Errorf("Run = %s (%s), want %s (%s)", v.Outcome, v.Reason, tt.wantOut, tt.wantReason)
			}
		})
	}
}

// TestAppJobKindsAndTheBudgetReserve: with the company's budget down to its reserve, a job of
// an app's background kind waits (deferred, no call) and a kind marked UseReserve runs.
func TestAppJobKindsAndTheBudgetReserve(t *testing.T) {
	w := newWorld(t, pdsim.Config{DailyBudget: 1000})
	w.limits.BudgetReserve = 0.2
	w.enqueueReserve("backlog", 100, false)
	w.drainBefore(w.clock.Now().Add(50 * time.Minute))
	if b := w.sim.CompanyBudget(pdsim.DefaultCompanyID); b.Remaining >= 200+10*4 {
		t.Fatalf("budget left = %d, want the backlog stopped at the reserve", b.Remaining)
	}
	s := w.engine.Runners[jobs.KindAPICall].(*pdwork.APICall).Sessions
	id := installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
	list := func(ctx context.Context, _ jobs.Job, c *pdwork.Client) error {
		_, err := c.Do(ctx, http.MethodGet, "/api/v2/deals", nil, false)
		return err
	}
	if v := (&pdwork.AppJobs{Sessions: s, Func: list}).Run(t.Context(), jobs.AppJob("sync", id, "1", nil)); v.Outcome != worker.OutcomeDeferred {
		t.Errorf("background kind within the reserve = %s (%s), want deferred", v.Outcome, v.Reason)
	}
	if v := (&pdwork.AppJobs{Sessions: s, Func: list, UseReserve: true}).Run(t.Context(), jobs.AppJob("click", id, "1", nil)); v.Outcome != worker.OutcomeSucceeded {
		t.Errorf("kind marked UseReserve = %s (%s), want succeeded", v.Outcome, v.Reason)
	}
}
