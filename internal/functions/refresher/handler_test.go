package refresher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func id(user int64) installation.ID {
	return installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: user}
}

func TestScheduledRunRefreshesOnlyDueInstallations(t *testing.T) {
	e := newEnv(t)
	installs := []struct {
		user      int64
		expiresIn time.Duration
		state     string // "", "needs_reauth" or "uninstalled"
		wantFresh bool   // want new tokens after the run
	}{
		{101, 5 * time.Minute, "", true},
		{102, 10 * time.Minute, "", true}, // due exactly now: refresh.Lead is 10 minutes
		{103, -time.Hour, "", true},       // already expired (the function was down)
		{104, 11 * time.Minute, "", false},
		{105, 59 * time.Minute, "", false},
		{106, time.Minute, "needs_reauth", false},
		{107, time.Minute, "uninstalled", false},
	}
	before := map[int64]tokenstore.Installation{}
	for _, in := range installs {
		before[in.user] = e.install(in.user, in.expiresIn)
		switch in.state {
		case "needs_reauth":
			if _, err := e.store.Lease(t.Context(), id(in.user), "setup", time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := e.store.MarkNeedsReauth(t.Context(), id(in.user), "setup", "refresh_token_invalid"); err != nil {
				t.Fatal(err)
			}
		case "uninstalled":
			if _, err := e.store.Uninstall(t.Context(), id(in.user)); err != nil {
				t.Fatal(err)
			}
		}
	}

	for _, name := range []string{"schedule.json", "eventbridge_scheduled_event.json"} {
		t.Run(name, func(t *testing.T) {
			s, err := e.h.Handle(t.Context(), fixture(t, name))
			if err != nil {
				t.Fatalf("Handle(%s) error = %v", name, err)
			}
			want := Summary{Mode: "schedule", Summary: refresh.Summary{Due: 3, Refreshed: 3}}
			if name != "schedule.json" {
				want = Summary{Mode: "schedule"} // all three were refreshed by the first run
			}
			if s != want {
				t.Errorf("Handle(%s) = %+v, want %+v", name, s, want)
			}
		})
	}
	if got := e.refreshCalls(); got != 3 {
		t.Errorf("refresh_token calls = %d, want 3", got)
	}
	for _, in := range installs {
		got := e.get(id(in.user))
		// Uninstall and MarkNeedsReauth delete the tokens: only active installations keep theirs
		// (the token-call count above shows those two were not refreshed).
		if changed := got.AccessToken != before[in.user].AccessToken; changed != in.wantFresh && in.state == "" {
			t.Errorf("user %d (expires in %s): access token changed = %t, want %t", in.user, in.expiresIn, changed, in.wantFresh)
		}
	}
	if got := e.dueNow(); len(got) != 0 {
		t.Errorf("due after the run = %v, want none", got)
	}
}

func TestManualInvocation(t *testing.T) {
	e := newEnv(t)
	old := e.install(pdsim.DefaultUserID, 59*time.Minute) // not due

	s, err := e.h.Handle(t.Context(), fixture(t, "manual_string_ids.json"))
	if want := (Summary{Mode: "manual", Summary: refresh.Summary{Due: 1, Fresh: 1}, Outcome: refresh.OutcomeFresh, Reason: "not_due"}); err != nil || s != want {
		t.Errorf("Handle(manual, no force) = %+v, %v; want %+v", s, err, want)
	}
	s, err = e.h.Handle(t.Context(), fixture(t, "manual_force.json"))
	if want := (Summary{Mode: "manual", Summary: refresh.Summary{Due: 1, Refreshed: 1}, Outcome: refresh.OutcomeRefreshed, Reason: "forced"}); err != nil || s != want {
		t.Errorf("Handle(manual, force) = %+v, %v; want %+v", s, err, want)
	}
	if got := e.get(old.ID); got.AccessToken == old.AccessToken || got.RefreshToken == old.RefreshToken {
		t.Error("a forced manual refresh did not store new tokens")
	}
	if got := e.refreshCalls(); got != 1 {
		t.Errorf("refresh_token calls = %d, want 1", got)
	}

	// An installation that does not exist is an answer, not a failed run.
	s, err = e.h.Handle(t.Context(), json.RawMessage(`{"company_id":1,"user_id":2,"force":true}`))
	if want := (Summary{Mode: "manual", Summary: refresh.Summary{Due: 1, NotActive: 1}, Outcome: refresh.OutcomeNotFound, Reason: "not_found"}); err != nil || s != want {
		t.Errorf("Handle(manual, unknown) = %+v, %v; want %+v", s, err, want)
	}

	// A manual refresh that fails fails the invocation, so the engineer sees it.
	e.inject(pdsim.Fault{Path: "/oauth/token", Status: http.StatusUnauthorized, Body: `{"success":false,"message":"Invalid client: client is invalid"}`, Times: 1})
	s, err = e.h.Handle(t.Context(), fixture(t, "manual_force.json"))
	var re *RunError
	if !errors.As(err, &re) || s.Outcome != refresh.OutcomeFailed || s.Failed != 1 {
		t.Errorf("Handle(manual, invalid client) = %+v, %v; want failed with a *RunError", s, err)
	}
}

func TestInput(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name    string
		in      string
		wantErr bool // else a scheduled run
	}{
		{"empty", ``, false},
		{"null", `null`, false},
		{"empty object", `{}`, false},
		{"scheduler payload object", `{"source":"aws.scheduler","note":"every 5 minutes"}`, false},
		{"array", `[1,2]`, false},
		{"string", `"tick"`, false},
		{"not JSON", `{"company_id":`, true},
		{"missing user", string(fixture(t, "manual_missing_user.json")), true},
		{"unknown field", string(fixture(t, "manual_typo.json")), true},
		{"force only", `{"force":true}`, true},
		{"company not a number", `{"company_id":"acme","user_id":5206648}`, true},
		{"negative id", `{"company_id":-3,"user_id":5206648}`, true},
		{"zero id", `{"company_id":3408256,"user_id":0}`, true},
		{"fractional id", `{"company_id":3408256.5,"user_id":5206648}`, true},
		{"id null", `{"company_id":null,"user_id":5206648}`, true},
		{"id object", `{"company_id":{"id":1},"user_id":5206648}`, true},
		{"force not a bool", `{"company_id":3408256,"user_id":5206648,"force":"yes"}`, true},
		{"trailing garbage", `{"company_id":3408256,"user_id":5206648} x`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := e.h.Handle(t.Context(), json.RawMessage(tt.in))
			if tt.wantErr {
				var ie *refresh.InputError
				if !errors.As(err, &ie) || !errors.Is(err, refresh.ErrBadInput) {
					t.Errorf("Handle(%s) = %+v, %v; want an *refresh.InputError", tt.in, s, err)
				}
				return
			}
			if err != nil || s.Mode != "schedule" {
				t.Errorf("Handle(%s) = %+v, %v; want a scheduled run", tt.in, s, err)
			}
		})
	}
	if got := e.refreshCalls(); got != 0 {
		t.Errorf("refresh_token calls = %d, want 0", got)
	}
}

func TestDeadlineLeavesTheRestDue(t *testing.T) {
	e := newEnv(t)
	const n = 6
	for i := range n {
		e.install(int64(201+i), time.Duration(i)*time.Second) // all due, in this order
	}
	e.inject(pdsim.Fault{Path: "/oauth/token", Latency: 600 * time.Millisecond})
	e.h.Config.Concurrency = 1
	e.h.Config.DeadlineReserve = 1200 * time.Millisecond
	e.refresher.SaveTimeout = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()

	begin := time.Now()
	s, err := e.h.Handle(ctx, fixture(t, "schedule.json"))
	took := time.Since(begin)
	if err != nil {
		t.Fatalf("Handle error = %v", err)
	}
	if s.Due != n || s.Refreshed < 1 || s.Skipped < 1 || s.Refreshed+s.Skipped != n {
		t.Errorf("Handle = %+v, want %d due, some refreshed, the rest skipped", s, n)
	}
	if took >= 3*time.Second {
		t.Errorf("Handle took %s, want it done before the 3 s deadline", took)
	}
	due := e.dueNow()
	if len(due) != s.Skipped {
		t.Errorf("still due after the run: %d, want the %d skipped", len(due), s.Skipped)
	}
	for _, d := range due {
		// Version 1 as installed: the handler did not even lease it.
		if in := e.get(d); in.Version != 1 || in.LeaseOwner != "" || in.FailureCount != 0 {
			t.Errorf("skipped %s: version %d lease %q failures %d, want untouched (1, none, 0)", d, in.Version, in.LeaseOwner, in.FailureCount)
		}
	}
	if got := e.refreshCalls(); got != s.Refreshed {
		t.Errorf("refresh_token calls = %d, want %d (one per refreshed)", got, s.Refreshed)
	}
}

func TestOneFailureDoesNotStopTheOthers(t *testing.T) {
	e := newEnv(t)
	// Oldest due first: 301 meets the 503, 304's grant is revoked, 302 and 303 are fine.
	for i, user := range []int64{301, 302, 303, 304} {
		e.install(user, time.Duration(i)*time.Second)
	}
	e.sim.RevokeUser(304)
	e.inject(pdsim.Fault{Path: "/oauth/token", Status: http.StatusServiceUnavailable, Times: 1})
	e.h.Config.Concurrency = 1 // keep the order, so the fault hits 301

	s, err := e.h.Handle(t.Context(), fixture(t, "schedule.json"))
	if want := (Summary{Mode: "schedule", Summary: refresh.Summary{Due: 4, Refreshed: 2, RetryLater: 1, NeedsReauth: 1}}); err != nil || s != want {
		t.Errorf("Handle = %+v, %v; want %+v", s, err, want)
	}
	if got := e.alertReasons(); !slices.Equal(got, []string{"refresh_token_invalid"}) {
		t.Errorf("alerts = %v, want [refresh_token_invalid]", got)
	}
	if got := e.get(id(301)); got.FailureCount != 1 || got.Status != tokenstore.StatusActive {
		t.Errorf("301 after a 503: failures %d status %s, want 1 active", got.FailureCount, got.Status)
	}
	if got := e.get(id(304)); got.Status != tokenstore.StatusNeedsReauth {
		t.Errorf("304 after a revoked grant: status %s, want %s", got.Status, tokenstore.StatusNeedsReauth)
	}
}

func TestFiftyDueWithConcurrencyEight(t *testing.T) {
	e := newEnv(t)
	const n = 50
	for i := range n {
		e.install(int64(1001+i), time.Duration(i%7)*time.Minute)
	}
	e.h.Config.Concurrency = 8
	counting := &inFlight{One: e.refresher}
	e.h.Refresher = counting

	s, err := e.h.Handle(t.Context(), fixture(t, "schedule.json"))
	if want := (Summary{Mode: "schedule", Summary: refresh.Summary{Due: n, Refreshed: n}}); err != nil || s != want {
		t.Errorf("Handle = %+v, %v; want %+v", s, err, want)
	}
	if counting.max < 2 || counting.max > 8 {
		t.Errorf("refreshes in flight at most %d, want between 2 and 8 (Concurrency 8)", counting.max)
	}
	c := e.sim.Counters()
	if got := c.TokenByGrant["refresh_token"]; got != n {
		t.Errorf("refresh_token calls = %d, want %d", got, n)
	}
	for i := range n {
		if got := c.TokenByInstallation[id(int64(1001+i)).String()]; got != 1 {
			t.Errorf("token calls for %s = %d, want 1", id(int64(1001+i)), got)
		}
	}
	if got := e.dueNow(); len(got) != 0 {
		t.Errorf("due after the run: %d, want 0", len(got))
	}
	for i := range n {
		if in := e.get(id(int64(1001 + i))); in.RefreshedAt.IsZero() {
			t.Errorf("%s was not refreshed", in.ID)
		}
	}
}

func TestBatchLimit(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.install(int64(401+i), time.Duration(i)*time.Second)
	}
	e.h.Config.BatchLimit = 3
	s, err := e.h.Handle(t.Context(), fixture(t, "schedule.json"))
	if want := (Summary{Mode: "schedule", Summary: refresh.Summary{Due: 3, Refreshed: 3}}); err != nil || s != want {
		t.Errorf("Handle = %+v, %v; want %+v", s, err, want)
	}
	if got := e.dueNow(); !slices.Equal(got, []installation.ID{id(404), id(405)}) {
		t.Errorf("due after the run = %v, want the two newest", got)
	}
}

func TestDueQueryFailureFailsTheRun(t *testing.T) {
	e := newEnv(t)
	e.h.Store = &tokenstore.Store{DB: dynamodb.NewFromConfig(testenv.AWS(t)), Table: "no-such-table-" + fmt.Sprint(time.Now().UnixNano())}
	s, err := e.h.Handle(t.Context(), fixture(t, "schedule.json"))
	var re *RunError
	if !errors.As(err, &re) || re.Op != "list due installations" {
		t.Errorf("Handle with an unreadable index = %+v, %v; want a *RunError listing due installations", s, err)
	}
}

// inFlight wraps a Refresher and records the most calls running at once.
type inFlight struct {
	refresh.One
	mu       sync.Mutex
	cur, max int
}

func (f *inFlight) Refresh(ctx context.Context, id installation.ID, force bool) (refresh.Result, error) {
	f.mu.Lock()
	f.cur++
	f.max = max(f.max, f.cur)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.cur--
		f.mu.Unlock()
	}()
	return f.One.Refresh(ctx, id, force)
}
