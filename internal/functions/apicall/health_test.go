package apicall

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// outage wraps the receiver's HTTP API so that it answers 503 while down is set, as a
// receiver does during an outage.
func outage(down *atomic.Bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// runQueued receives want jobs from the jobs queue (and any extra within a moment), checks
// they are of kind, and runs them as one batch.
func (e *env) runQueued(kind string, want int) []sqstypes.Message {
	e.t.Helper()
	msgs := e.jobsQueued(want, 5*time.Second)
	if len(msgs) != want {
		e.t.Fatalf("jobs queued = %d, want %d %s", len(msgs), want, kind)
	}
	for _, m := range msgs {
		if j, err := jobs.Parse(*m.Body); err != nil || j.Kind != kind {
			e.t.Fatalf("queued job = %s (%v), want a %s job", *m.Body, err, kind)
		} else if j.UseReserve {
			// Catch-up work waits rather than spend the customer's budget reserve.
			e.t.Errorf("queued %s job %s may use the budget reserve, want not", kind, j.ID)
		}
	}
	if failed := e.handleSQS(e.sqsEvent(msgs)); len(failed) != 0 {
		e.t.Fatalf("batch failures = %v, want none", failed)
	}
	return msgs
}

// handledEvents are the webhook_event jobs the handler ran (succeeded/handled) since the test
// began, as "entity_id/action[/catch_up]".
func (e *env) handledEvents() []string {
	var out []string
	for _, d := range e.decisions() {
		if d.Kind == jobs.KindWebhookEvent && d.Action == "succeeded" && d.Reason == pdwork.ReasonHandled {
			s := d.EntityID + "/" + d.EventAction
			if d.CatchUp {
				s += "/catch_up"
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// TestWebhookDeletedAfterFailuresIsRecreatedAndCaughtUp is the weekend outage: the receiver
// (the real bootstrap) answers 503 for three days, Pipedrive (the simulator) retries, bans and
// finally deletes the webhook; meanwhile a deal is created, the first deal is changed, and
// after the deletion another deal is created. The daily check finds the webhook missing,
// re-creates it and queues a catch-up, which lists the deals changed since the last processed
// event and runs each through the webhook_event path: the example app's handler runs once per
// missed change (both new deals get their note), a second catch-up of the same window runs
// nothing again, and the re-created webhook delivers the next deal.
func TestWebhookDeletedAfterFailuresIsRecreatedAndCaughtUp(t *testing.T) {
	e := newEnv(t).notesApp()
	e.install(pdsim.DefaultUserID)
	var down atomic.Bool
	url := e.receiverBehind(outage(&down))
	e.subscribe(url, pdwork.WebhookEvent{Object: "deal", Action: "*"})
	e.undelayed() // the catch-up waits CatchUpDelay on the fake clock, not in real time
	first := e.sim.Webhooks(pdsim.DefaultUserID)[0]

	before := e.act(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "Before the outage"}})
	e.runQueued(jobs.KindWebhookEvent, 1)

	// The outage: every delivery fails; Pipedrive retries, then deletes the webhook.
	down.Store(true)
	e.clock.Advance(time.Minute)
	missed := e.act(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "During the outage"}})
	e.clock.Advance(time.Minute)
	changed := e.act(pdsim.UserAction{Object: "deal", Action: "change", ID: before.EntityID, Fields: map[string]any{"title": "Changed during the outage"}})
	for _, d := range []time.Duration{3 * time.Second, 30 * time.Second, 150 * time.Second, pdsim.WebhookDeleteAfter} {
		e.clock.Advance(d)
		e.sim.DeliverDue(t.Context())
	}
	if hooks := e.sim.Webhooks(pdsim.DefaultUserID); len(hooks) != 0 || e.sim.Counters().WebhooksDeleted != 1 {
		t.Fatalf("webhooks after 3 days of failures = %+v, want the one deleted", hooks)
	}
	afterDeletion := e.act(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "After the deletion"}})
	if msgs := e.jobsQueued(0, 0); len(msgs) != 0 {
		t.Fatalf("jobs queued during the outage = %d, want none", len(msgs))
	}
	down.Store(false)

	// The daily check: one list, the webhook re-created, a catch-up queued.
	e.sim.ResetCounters()
	day := e.clock.Now().Format(time.DateOnly)
	res := e.direct(encode(t, jobs.CheckWebhooks(acme, day)))
	var sum pdwork.CheckSummary
	if err := json.Unmarshal(res.Body, &sum); err != nil || res.Outcome != worker.OutcomeSucceeded || res.Reason != pdwork.ReasonWebhooksRepaired ||
		len(sum.Created) != 1 || sum.Lost != "webhook_missing" || sum.CatchUpJob == "" {
		t.Fatalf("check = %+v %s, want repaired: one webhook created, lost webhook_missing, a catch-up queued", res, res.Body)
	}
	hooks := e.sim.Webhooks(pdsim.DefaultUserID)
	if len(hooks) != 1 || hooks[0].ID == first.ID || hooks[0].SubscriptionURL != url || hooks[0].Version != "2.0" ||
		hooks[0].HTTPAuthUser != first.HTTPAuthUser || hooks[0].HTTPAuthPassword != first.HTTPAuthPassword {
		t.Fatalf("webhooks after the check = %+v, want one new v2 webhook to the receiver with the installation's credentials", hooks)
	}
	if c := e.sim.Counters().APIByRoute; c["GET /api/v1/webhooks"] != 1 || c["POST /api/v1/webhooks"] != 1 {
		t.Errorf("webhook calls of the check = %v, want one list and one create", c)
	}

	// The catch-up: the deals changed since the last processed event, each run once.
	e.clock.Advance(pdwork.CatchUpDelay)
	e.runQueued(jobs.KindCatchUp, 1)
	e.runQueued(jobs.KindWebhookEvent, 3)
	id := func(ev pdsim.Event) string { return strconv.FormatInt(ev.EntityID, 10) }
	want := []string{id(changed) + "/change/catch_up", id(missed) + "/create/catch_up", id(afterDeletion) + "/create/catch_up"}
	want = append(want, id(before)+"/create")
	slices.Sort(want)
	if got := e.handledEvents(); !slices.Equal(got, want) {
		t.Errorf("events handled = %v, want %v", got, want)
	}
	for _, ev := range []pdsim.Event{before, missed, afterDeletion} {
		if got := e.notes(ev.EntityID); !slices.Equal(got, []string{testNote}) {
			t.Errorf("notes of deal %d = %q, want exactly [%q]", ev.EntityID, got, testNote)
		}
	}

	// An operator's catch-up of the same window lists the same changes: nothing runs twice.
	again := jobs.CatchUpJob(acme, "operator-1", jobs.CatchUp{Since: t0, Until: e.clock.Now(), Reason: "operator"})
	if res := e.direct(encode(t, again)); res.Outcome != worker.OutcomeSucceeded || res.Reason != pdwork.ReasonCaughtUp {
		t.Fatalf("second catch-up = %+v, want caught_up", res)
	}
	e.runQueued(jobs.KindWebhookEvent, 3)
	if got := e.handledEvents(); !slices.Equal(got, want) {
		t.Errorf("events handled after a second catch-up = %v, want still %v", got, want)
	}

	// The re-created webhook delivers again.
	next := e.act(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "After the repair"}})
	e.runQueued(jobs.KindWebhookEvent, 1)
	if got := e.notes(next.EntityID); !slices.Equal(got, []string{testNote}) {
		t.Errorf("notes of the deal after the repair = %q, want [%q]", got, testNote)
	}
	// The next day's check finds it healthy: one list, nothing else.
	e.clock.Advance(24 * time.Hour)
	e.sim.ResetCounters()
	res = e.direct(encode(t, jobs.CheckWebhooks(acme, e.clock.Now().Format(time.DateOnly))))
	if res.Outcome != worker.OutcomeSucceeded || res.Reason != pdwork.ReasonWebhooksHealthy {
		t.Errorf("next day's check = %+v, want webhooks_healthy", res)
	}
	if c := e.sim.Counters().APIByRoute; c["GET /api/v1/webhooks"] != 1 || len(c) != 1 {
		t.Errorf("Pipedrive calls of a healthy check = %v, want one GET /api/v1/webhooks", c)
	}
}

// checkCost is what one check_webhooks job cost, run through the queue as Lambda runs it.
type checkCost struct {
	pipedrive, oauth, dynamodb, sqsSends int
	routes                               map[string]int
}

// runCheck runs the day's check of acme through the jobs queue and counts what it cost: calls
// to Pipedrive's API and token endpoint, the worker's DynamoDB requests and its SQS sends (the
// event source's receive and delete of the message come on top, batched by up to 10).
func (e *env) runCheck() (worker.Result, checkCost) {
	e.t.Helper()
	e.sim.ResetCounters()
	e.queue.take(e.res.JobsQueueURL)
	j := jobs.CheckWebhooks(acme, e.clock.Now().Format(time.DateOnly))
	e.send(encode(e.t, j))
	msgs := e.receive(e.res.JobsQueueURL, 1, 5*time.Second)
	e.ddbRequests.Store(0)
	if failed := e.handleSQS(e.sqsEvent(msgs)); len(failed) != 0 {
		e.t.Fatalf("check failed: %v", failed)
	}
	c := checkCost{dynamodb: int(e.ddbRequests.Load()), sqsSends: e.queue.take(e.res.JobsQueueURL), routes: map[string]int{}}
	counters := e.sim.Counters()
	for route, n := range counters.APIByRoute {
		c.pipedrive += n
		c.routes[route] = n
	}
	for _, n := range counters.TokenByGrant {
		c.oauth += n
	}
	d := e.decisionFor(j.ID)
	return worker.Result{Outcome: worker.Outcome(d.Action), Reason: d.Reason}, c
}

// TestWebhookCheckCost measures a healthy installation's daily check, the figure
// docs/capacity.md uses: one Pipedrive request (GET /api/v1/webhooks) and no SQS send, with
// the token still valid (an installation in use) and with it expired (an idle one: one
// refresh_token grant more). The DynamoDB requests (claim, installation read, use mark or
// refresh, gate, completion) are logged, not asserted: they follow the engine's protocol.
func TestWebhookCheckCost(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	e.subscribe("https://app.example/pipedrive/webhooks", pdwork.WebhookEvent{Object: "deal", Action: "*"}, pdwork.WebhookEvent{Object: "person", Action: "*"})
	e.clock.Advance(time.Minute)
	for _, tt := range []struct {
		name      string
		advance   time.Duration
		wantOAuth int
	}{
		{"in use (token valid)", 0, 0},
		{"idle (token expired)", 26 * time.Hour, 1},
	} {
		e.clock.Advance(tt.advance)
		res, c := e.runCheck()
		if res.Outcome != worker.OutcomeSucceeded || res.Reason != pdwork.ReasonWebhooksHealthy {
			t.Fatalf("%s: check = %+v, want webhooks_healthy", tt.name, res)
		}
		if c.pipedrive != 1 || c.routes["GET /api/v1/webhooks"] != 1 || c.oauth != tt.wantOAuth || c.sqsSends != 0 {
			t.Errorf("%s: check cost = %+v, want one GET /api/v1/webhooks, %d token grant(s), no SQS send", tt.name, c, tt.wantOAuth)
		}
		t.Logf("webhook-check cost per installation (%s): pipedrive_requests=%d (GET /api/v1/webhooks) oauth_requests=%d dynamodb_requests=%d worker_sqs_sends=%d; plus 1 SQS send by the refresher's sweep and the event source's receive/delete (batches of up to 10)",
			tt.name, c.pipedrive, c.oauth, c.dynamodb, c.sqsSends)
	}
}
