package refresh_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// TestIdleInstallationFirstJobsRefreshOnce: against moto and the simulator, an installation
// left idle (its access token expired days ago, the schedule leaving it alone) gets three jobs
// at once. The worker's Sessions refresh it once under the lease (the others retry or find it
// fresh), the refresh records the use, and the schedule keeps it warm from then on.
func TestIdleInstallationFirstJobsRefreshOnce(t *testing.T) {
	e := newEnv(t, true)
	e.install(pdsim.DefaultUserID)
	sched := e.refresher("sched")
	run := func() refresh.Summary {
		t.Helper()
		s, err := refresh.RunDue(t.Context(), e.store, sched, refresh.RunConfig{Now: e.clock.Now, Shards: e.store, Owner: "sched"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The install's hour of use on the schedule, then idle for five days: a run then (and every
	// run in between would list the same) refreshes nothing.
	for range 3 * 12 {
		e.clock.Advance(5 * time.Minute)
		run()
	}
	warmCalls := e.refreshCalls()
	e.clock.Advance(5 * 24 * time.Hour)
	if s := run(); s.Due != 0 || e.refreshCalls() != warmCalls {
		t.Errorf("scheduled run five idle days later = %+v, %d token calls; want nothing due", s, e.refreshCalls()-warmCalls)
	}
	if warmCalls > 2 {
		t.Errorf("token calls in five days of an installation used only at its install = %d, want at most 2", warmCalls)
	}
	in := e.get(defaultID)
	if refresh.Usable(in, e.clock.Now()) || installation.Warm(in) {
		t.Fatalf("after five idle days: usable %t warm %t, want an expired token and idle", refresh.Usable(in, e.clock.Now()), installation.Warm(in))
	}

	sessions := &pdwork.Sessions{Installations: e.store, Refresher: e.refresher("job"), API: &pdapi.Client{HTTP: e.sim.HTTP.Client()}, Now: e.clock.Now}
	open := func(name string) error {
		_, err := sessions.Open(t.Context(), jobs.Job{ID: name, Kind: jobs.KindAPICall, CompanyID: defaultID.CompanyID, UserID: defaultID.UserID, Method: "GET", Path: "/api/v2/deals"})
		return err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		retry []string
	)
	for i := range 3 {
		wg.Go(func() {
			name := fmt.Sprintf("job-%d", i)
			err := open(name)
			var d *pdwork.Decided
			switch {
			case err == nil:
			case errors.As(err, &d) && d.Verdict.Outcome == worker.OutcomeDeferred && d.Verdict.Reason == pdwork.ReasonRefreshInProgress:
				mu.Lock()
				retry = append(retry, name)
				mu.Unlock()
			default:
				t.Errorf("Open(%s) = %v, want success or a deferral while the refresh is in progress", name, err)
			}
		})
	}
	wg.Wait()
	if got := e.refreshCalls() - warmCalls; got != 1 {
		t.Errorf("token calls for three concurrent first jobs = %d, want 1", got)
	}
	for _, name := range retry { // the worker defers them a few seconds
		if err := open(name); err != nil {
			t.Errorf("Open(%s) again = %v, want the refreshed tokens", name, err)
		}
	}
	if got := e.refreshCalls() - warmCalls; got != 1 {
		t.Errorf("token calls after the retries = %d, want 1", got)
	}
	in = e.get(defaultID)
	if !installation.Warm(in) || !in.RefreshDueAt.Equal(in.ExpiresAt.Add(-refresh.Lead)) {
		t.Errorf("after the jobs: warm %t, due %s, want warm and due %s", installation.Warm(in), in.RefreshDueAt, in.ExpiresAt.Add(-refresh.Lead))
	}
	// Jobs every 20 minutes for three hours never meet an expired token.
	for i := range 9 {
		e.clock.Advance(20 * time.Minute)
		run()
		if cur := e.get(defaultID); !refresh.Usable(cur, e.clock.Now()) {
			t.Errorf("job %d, 20 minutes after the previous: access token expired", i)
		}
		if err := open(fmt.Sprintf("later-%d", i)); err != nil {
			t.Errorf("Open(later-%d) = %v", i, err)
		}
	}
}
