package pdkittest_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/pdkit"
	"github.com/pdkit/pipedrive-lambda-kit/pdkit/pdkittest"
)

// record is what a test app saw, safe for the worker's concurrent runs.
type record struct {
	mu          sync.Mutex
	installs    []pdkit.Installation
	uninstalls  []pdkit.Installation
	jobs        []string
	actors      []int64
	enqueueErrs []error
}

func (r *record) add(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

func (r *record) count(f func() int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f()
}

// TestHooksEventsAndJobs runs every kind of app code through the kit: the install hook (with a
// client that can queue), an event handler queueing a job per deal twice (one job runs: the
// idempotency key), the job with its payload, an unknown job kind refused at Enqueue, and the
// uninstall hook.
func TestHooksEventsAndJobs(t *testing.T) {
	var r record
	mux := pdkit.NewEventMux()
	mux.HandleFunc("deal.create", func(ctx context.Context, ev pdkit.Event, c *pdkit.Client) error {
		r.add(func() { r.actors = append(r.actors, ev.ActorUserID) })
		job := pdkit.Job{Kind: "follow_up", Key: "deal-" + ev.EntityID, Payload: json.RawMessage(`{"deal":` + ev.EntityID + `}`)}
		for range 2 {
			if err := c.Enqueue(ctx, job); err != nil {
				return err
			}
		}
		err := c.Enqueue(ctx, pdkit.Job{Kind: "nope", Key: "x"})
		r.add(func() { r.enqueueErrs = append(r.enqueueErrs, err) })
		return nil
	})
	app := &pdkit.App{
		Events: mux,
		OnInstall: func(ctx context.Context, c *pdkit.Client) error {
			// The client acts for the new installation: it can call Pipedrive.
			if _, err := c.Get(ctx, "/api/v1/users/me"); err != nil {
				return err
			}
			r.add(func() { r.installs = append(r.installs, c.Installation()) })
			return nil
		},
		OnUninstall: func(ctx context.Context, in pdkit.Installation) error {
			r.add(func() { r.uninstalls = append(r.uninstalls, in) })
			return nil
		},
		Jobs: map[string]pdkit.JobKind{"follow_up": {Run: func(ctx context.Context, job pdkit.Job, c *pdkit.Client) error {
			var p struct{ Deal int64 }
			if err := json.Unmarshal(job.Payload, &p); err != nil {
				return err
			}
			if job.Installation != c.Installation() || job.Key != "deal-"+strconv.FormatInt(p.Deal, 10) {
				return errors.New("job of another installation or key")
			}
			r.add(func() { r.jobs = append(r.jobs, job.Key) })
			return nil
		}}},
	}
	st := pdkittest.Start(t, app)
	in := st.Install()
	if got := r.count(func() int { return len(r.installs) }); got != 1 || r.installs[0] != in {
		t.Errorf("install hook runs = %v, want one for %s", r.installs, in)
	}

	deal := st.CreateDeal("Follow me")
	st.WaitFor("the follow-up job", func() bool { return r.count(func() int { return len(r.jobs) }) > 0 })
	st.Settle()
	if want := "deal-" + strconv.FormatInt(deal, 10); r.count(func() int { return len(r.jobs) }) != 1 || r.jobs[0] != want {
		t.Errorf("jobs run = %v, want one %s (queued twice with one key)", r.jobs, want)
	}
	if len(r.enqueueErrs) != 1 || r.enqueueErrs[0] == nil {
		t.Errorf("Enqueue of an unknown kind = %v, want an error", r.enqueueErrs)
	}
	if len(r.actors) != 1 || r.actors[0] != in.UserID {
		t.Errorf("event actors = %v, want the installing user %d (who created the deal)", r.actors, in.UserID)
	}

	st.Uninstall()
	if got := r.count(func() int { return len(r.uninstalls) }); got != 1 || r.uninstalls[0] != in {
		t.Errorf("uninstall hook runs = %v, want one for %s", r.uninstalls, in)
	}
	if n := st.DeadLetters(); n != 0 {
		t.Errorf("dead letters = %d, want 0", n)
	}
}

// TestAppErrorIsRetried: a handler's own error (not a Pipedrive call's) retries the event; it
// runs again and succeeds.
func TestAppErrorIsRetried(t *testing.T) {
	var mu sync.Mutex
	runs := 0
	mux := pdkit.NewEventMux()
	mux.HandleFunc("deal.create", func(context.Context, pdkit.Event, *pdkit.Client) error {
		mu.Lock()
		defer mu.Unlock()
		runs++
		if runs == 1 {
			return errors.New("the app's database is down")
		}
		return nil
	})
	st := pdkittest.Start(t, &pdkit.App{Events: mux})
	st.Install()
	st.CreateDeal("Retry me")
	st.WaitFor("the second run", func() bool { mu.Lock(); defer mu.Unlock(); return runs >= 2 })
	st.Settle()
	mu.Lock()
	defer mu.Unlock()
	if runs != 2 || st.DeadLetters() != 0 {
		t.Errorf("runs = %d, dead letters = %d; want 2 and 0", runs, st.DeadLetters())
	}
}

// TestUnmarkedPostIsNotRepeated: a POST the app did not mark RetrySafe, answered 500 (Pipedrive
// may have saved it), is not sent again: the event is dead-lettered as outcome_unknown.
func TestUnmarkedPostIsNotRepeated(t *testing.T) {
	mux := pdkit.NewEventMux()
	mux.HandleFunc("deal.create", func(ctx context.Context, ev pdkit.Event, c *pdkit.Client) error {
		_, err := c.Post(ctx, "/api/v1/notes", map[string]any{"deal_id": ev.EntityIDInt(), "content": "hello"})
		return err
	})
	st := pdkittest.Start(t, &pdkit.App{Events: mux})
	st.Install()
	st.Fail(pdkittest.Fault{Method: "POST", Path: "/api/v1/notes", Status: 500, Times: 1})
	st.CreateDeal("Once")
	st.WaitFor("the dead letter", func() bool { return st.DeadLetters() == 1 })
	st.Settle()
	if n := st.Requests("POST /api/v1/notes"); n != 1 {
		t.Errorf("POST /api/v1/notes requests = %d, want 1 (not repeated)", n)
	}
	if !strings.Contains(st.Log.String(), `"reason":"outcome_unknown"`) {
		t.Errorf("log has no outcome_unknown decision")
	}
}
