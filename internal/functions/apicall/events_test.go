package apicall

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/apigw"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// The test app's name, and the note it adds (as the worked example, examples/dealnotes, does).
const (
	testAppName = "Acme Notes"
	testNote    = "Received by " + testAppName
)

// notesApp runs the test app's handler for webhook events: the worked example's behaviour (one
// note on each created deal, looked for before it is added), written against the worker's
// Client as the public package adapts an app's handlers to it.
func (e *env) notesApp() *env {
	e.h.Engine.Runners[jobs.KindWebhookEvent].(*pdwork.WebhookEvents).Handler = pdwork.EventHandlerFunc(addNote)
	return e
}

// addNote adds testNote to a created deal that lacks it.
func addNote(ctx context.Context, ev webhook.Event, c *pdwork.Client) error {
	if ev.Entity != "deal" || ev.Action != webhook.ActionCreate {
		return nil
	}
	resp, err := c.Do(ctx, http.MethodGet, "/api/v1/notes?deal_id="+ev.EntityID+"&limit=100", nil, false)
	if err != nil {
		return fmt.Errorf("list notes: %w", err)
	}
	var page struct{ Data []struct{ Content string } }
	if err := json.Unmarshal(resp.Body, &page); err != nil {
		return err
	}
	for _, n := range page.Data {
		if n.Content == testNote {
			return nil
		}
	}
	body := []byte(`{"deal_id":` + ev.EntityID + `,"content":"` + testNote + `"}`)
	if _, err := c.Do(ctx, http.MethodPost, "/api/v1/notes", body, true); err != nil {
		return fmt.Errorf("add note: %w", err)
	}
	return nil
}

// receiver runs the webhook receiver's real bootstrap (functions/webhooks) under the emulator,
// with the environment template.yaml gives it, behind a local HTTP API, and returns its
// /pipedrive/webhooks URL: the simulator delivers there, it enqueues on this test's jobs queue.
func (e *env) receiver() string {
	e.t.Helper()
	return e.receiverBehind(nil)
}

// receiverBehind is receiver with the local HTTP API wrapped by wrap (nil: none), for tests
// that take the receiver down.
func (e *env) receiverBehind(wrap func(http.Handler) http.Handler) string {
	e.t.Helper()
	f, _ := testenv.StartFunction(e.t, "./functions/webhooks", lambdarun.Options{
		Name:    "WebhooksFunction",
		Env:     testenv.FunctionEnv(e.t, e.res, "WebhooksFunction"),
		Timeout: 10 * time.Second,
		Output:  io.MultiWriter(logSink, testenv.TestLogWriter(e.t)),
	})
	var h http.Handler = &apigw.Gateway{Routes: []apigw.Route{{Method: http.MethodPost, Path: "/pipedrive/webhooks", Function: f}}}
	if wrap != nil {
		h = wrap(h)
	}
	gw := httptest.NewServer(h)
	e.t.Cleanup(gw.Close)
	return gw.URL + "/pipedrive/webhooks"
}

// subscribe registers the app's webhooks for events at url through the worker's
// register_webhooks job, as after an install.
func (e *env) subscribe(url string, events ...pdwork.WebhookEvent) {
	e.t.Helper()
	cfg := pdwork.WebhookConfig{URL: url, Events: events}
	// The check shares the registration's runner; the catch-up lists what they subscribe.
	e.h.Engine.Runners[jobs.KindRegisterWebhooks].(*pdwork.RegisterWebhooks).Config = cfg
	e.h.Engine.Runners[jobs.KindCatchUp].(*pdwork.CatchUp).Config = cfg
	if res := e.direct(encode(e.t, registerJob(1))); res.Outcome != worker.OutcomeSucceeded {
		e.t.Fatalf("register_webhooks = %+v, want succeeded", res)
	}
}

// act changes data at the simulator as a user of the web app and waits for the deliveries.
func (e *env) act(a pdsim.UserAction) pdsim.Event {
	e.t.Helper()
	ev, _, err := e.sim.ActAsUser(a)
	if err != nil {
		e.t.Fatalf("ActAsUser(%+v) = %v", a, err)
	}
	if err := e.sim.WaitDeliveries(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// jobsQueued takes what the receiver enqueued (left on the queue, invisible, with receipt
// handles), waiting up to wait for want messages and a moment longer for any extra one.
func (e *env) jobsQueued(want int, wait time.Duration) []sqstypes.Message {
	e.t.Helper()
	msgs := e.receive(e.res.JobsQueueURL, want, wait)
	return append(msgs, e.receive(e.res.JobsQueueURL, 10, 300*time.Millisecond)...)
}

// eventOf reads the webhook event a queued job carries.
func eventOf(t *testing.T, m sqstypes.Message) webhook.Event {
	t.Helper()
	j, err := jobs.Parse(*m.Body)
	if err != nil || j.Kind != jobs.KindWebhookEvent {
		t.Fatalf("queued message is not a webhook_event job: %v", err)
	}
	var ev webhook.Event
	if err := json.Unmarshal(j.Body, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// notes lists the contents of deal id's notes at the simulator.
func (e *env) notes(dealID int64) []string {
	e.t.Helper()
	tok, err := e.sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		e.t.Fatal(err)
	}
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
	resp, err := (&pdapi.Client{HTTP: e.sim.HTTP.Client()}).Do(e.t.Context(), http.MethodGet, tok.APIDomain,
		"/api/v1/notes?deal_id="+strconv.FormatInt(dealID, 10), tok.AccessToken, nil)
	if err != nil {
		e.t.Fatalf("list notes: %v", err)
	}
	var page struct{ Data []struct{ Content string } }
	if err := json.Unmarshal(resp.Body, &page); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, n := range page.Data {
		out = append(out, n.Content)
	}
	return out
}

// deliveredOK checks every recorded delivery was answered 200 with Basic auth.
func (e *env) deliveredOK(want int) {
	e.t.Helper()
	ds := e.sim.Deliveries()
	if len(ds) != want {
		e.t.Errorf("deliveries = %d, want %d", len(ds), want)
	}
	for _, d := range ds {
		if d.Status != http.StatusOK || !d.BasicAuth {
			e.t.Errorf("delivery %d (%s %s attempt %d) = %d %s, basic auth %t; want 200 with Basic auth", d.Seq, d.Object, d.Action, d.Attempt, d.Status, d.Outcome, d.BasicAuth)
		}
	}
}

// TestWebhookDealCreatedAddsOneNote is the whole loop with the real receiver: registration
// (v2, the secret's Basic pair), a deal created by a user, Pipedrive delivering the event four
// times (the first delivery and three concurrent copies), one job, one note.
func TestWebhookDealCreatedAddsOneNote(t *testing.T) {
	e := newEnv(t).notesApp()
	e.install(pdsim.DefaultUserID)
	url := e.receiver()
	e.subscribe(url, pdwork.WebhookEvent{Object: "deal", Action: "*"})
	hooks := e.sim.Webhooks(pdsim.DefaultUserID)
	if len(hooks) != 1 || hooks[0].Version != "2.0" || hooks[0].HTTPAuthUser != webhookCreds.User || hooks[0].HTTPAuthPassword != webhookPassword ||
		hooks[0].SubscriptionURL != url {
		t.Fatalf("webhooks at Pipedrive = %d, want one v2 webhook to the receiver with the secret's Basic pair", len(hooks))
	}

	created := e.act(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "Big deal"}})
	copies, err := e.sim.Redeliver(t.Context(), created.ID, pdsim.RedeliverOptions{Times: 3, Concurrent: true})
	if err != nil || len(copies) != 3 {
		t.Fatalf("Redeliver = %d copies, %v; want 3", len(copies), err)
	}
	e.deliveredOK(4)
	msgs := e.jobsQueued(1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("jobs queued for one event delivered 4 times = %d, want 1", len(msgs))
	}
	if ev := eventOf(t, msgs[0]); ev.ID != created.ID || ev.Version != "2.0" || ev.Action != "create" || ev.EntityID != strconv.FormatInt(created.EntityID, 10) {
		t.Errorf("queued event = %+v, want the deal's create (v2)", ev)
	}
	// SQS delivers the message twice as well (at least once): the second run is a duplicate.
	for range 2 {
		if failed := e.handleSQS(e.sqsEvent(msgs)); len(failed) != 0 {
			t.Errorf("batch failures = %v, want none", failed)
		}
	}
	if got := e.notes(created.EntityID); !slices.Equal(got, []string{testNote}) {
		t.Errorf("notes of the deal = %q, want exactly [%q]", got, testNote)
	}
	var actions []string
	for _, d := range e.decisions() {
		if d.Kind == jobs.KindWebhookEvent {
			actions = append(actions, d.Action+"/"+d.Reason)
		}
	}
	if want := []string{"succeeded/handled", "duplicate/already_done"}; !slices.Equal(actions, want) {
		t.Errorf("webhook_event decisions = %v, want %v", actions, want)
	}
	// A late copy after the work is done changes nothing either.
	if _, err := e.sim.Redeliver(t.Context(), created.ID, pdsim.RedeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	if msgs := e.jobsQueued(0, 0); len(msgs) != 0 {
		t.Errorf("a late copy queued %d jobs, want 0", len(msgs))
	}
	if got := e.notes(created.EntityID); len(got) != 1 {
		t.Errorf("notes after a late copy = %q, want one", got)
	}
	if c := e.sim.Counters().APIByRoute["POST /api/v1/notes"]; c != 1 {
		t.Errorf("POST /api/v1/notes calls = %d, want 1", c)
	}
}

// colleagueID is a colleague of the installing user (same company) who has not installed
// the app: in a team, most changes are a colleague's.
const colleagueID = 7700001

// addColleague adds colleagueID to the installing user's company at the simulator.
func (e *env) addColleague() {
	e.t.Helper()
	if err := e.sim.AddUser(pdsim.User{ID: colleagueID, CompanyID: pdsim.DefaultCompanyID, CompanyDomain: pdsim.DefaultCompanyDomain,
		CompanyName: pdsim.DefaultCompanyName, Name: "Grace Hopper", Email: "grace@acme.example"}); err != nil {
		e.t.Fatal(err)
	}
}

// TestWebhookColleagueDealGetsOneNote: a deal created by a colleague of the installing user
// (who has not installed the app) reaches the installing user's installation — the webhook's
// owner — through the real receiver, and the example app adds exactly one note. The event says
// who made the change.
func TestWebhookColleagueDealGetsOneNote(t *testing.T) {
	e := newEnv(t).notesApp()
	e.addColleague()
	e.install(pdsim.DefaultUserID)
	e.subscribe(e.receiver(), pdwork.WebhookEvent{Object: "deal", Action: "create"})
	created := e.act(pdsim.UserAction{UserID: colleagueID, Object: "deal", Action: "create", Fields: map[string]any{"title": "Grace's deal"}})
	e.deliveredOK(1)
	msgs := e.jobsQueued(1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("jobs queued for a colleague's deal = %d, want 1", len(msgs))
	}
	if ev := eventOf(t, msgs[0]); ev.UserID != pdsim.DefaultUserID || ev.ActorUserID != colleagueID || ev.CompanyID != pdsim.DefaultCompanyID {
		t.Errorf("queued event installation %d:%d actor %d; want the installing user's %d:%d, actor the colleague %d",
			ev.CompanyID, ev.UserID, ev.ActorUserID, pdsim.DefaultCompanyID, pdsim.DefaultUserID, colleagueID)
	}
	if failed := e.handleSQS(e.sqsEvent(msgs)); len(failed) != 0 {
		t.Errorf("batch failures = %v, want none", failed)
	}
	if got := e.notes(created.EntityID); !slices.Equal(got, []string{testNote}) {
		t.Errorf("notes of the colleague's deal = %q, want exactly [%q]", got, testNote)
	}
}

// TestWebhookV1PayloadAddsTheNote: a webhook made before the move to v2 delivers v1 payloads,
// which name no owner; the receiver finds the owner from the webhook id recorded when the
// webhook was registered, maps the payload to the same event, and the app adds its note to a
// colleague's deal.
func TestWebhookV1PayloadAddsTheNote(t *testing.T) {
	e := newEnv(t).notesApp()
	e.addColleague()
	in := e.install(pdsim.DefaultUserID)
	url := e.receiver()
	hook, err := (&pdapi.Client{HTTP: e.sim.HTTP.Client()}).CreateWebhook(t.Context(), in.APIDomain, in.AccessToken, pdapi.NewWebhook{
		SubscriptionURL: url, EventObject: "deal", EventAction: "added", Name: "v1 deals", Version: "1.0",
		HTTPAuthUser: webhookCreds.User, HTTPAuthPassword: webhookPassword})
	if err != nil {
		t.Fatal(err)
	}
	// As register_webhooks records every webhook it creates or finds.
	if err := e.store.RecordWebhookOwner(t.Context(), strconv.FormatInt(hook.ID, 10), in.ID); err != nil {
		t.Fatal(err)
	}
	created := e.act(pdsim.UserAction{UserID: colleagueID, Object: "deal", Action: "create", Fields: map[string]any{"title": "Old-style deal"}})
	e.deliveredOK(1)
	msgs := e.jobsQueued(1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("jobs queued = %d, want 1", len(msgs))
	}
	if ev := eventOf(t, msgs[0]); ev.Version != "1.0" || ev.Action != "create" || ev.Entity != "deal" || ev.EntityID != strconv.FormatInt(created.EntityID, 10) ||
		ev.UserID != pdsim.DefaultUserID || ev.ActorUserID != colleagueID {
		t.Errorf("queued event = %+v, want the deal's create read from v1, owned by the installing user, made by the colleague", ev)
	}
	if failed := e.handleSQS(e.sqsEvent(msgs)); len(failed) != 0 {
		t.Errorf("batch failures = %v, want none", failed)
	}
	if got := e.notes(created.EntityID); !slices.Equal(got, []string{testNote}) {
		t.Errorf("notes of the deal = %q, want [%q]", got, testNote)
	}
}

// TestWebhookStaleChangeIsSkipped: two changes of one deal whose deliveries arrive out of
// order: the newer runs, the older is skipped with its reason and never reaches the app.
func TestWebhookStaleChangeIsSkipped(t *testing.T) {
	var seen []string
	e := newEnv(t)
	e.h.Engine.Runners[jobs.KindWebhookEvent].(*pdwork.WebhookEvents).Handler = pdwork.EventHandlerFunc(
		func(_ context.Context, ev webhook.Event, _ *pdwork.Client) error {
			seen = append(seen, ev.Action+"@"+ev.Timestamp.Format(time.RFC3339Nano))
			return nil
		})
	e.install(pdsim.DefaultUserID)
	e.subscribe(e.receiver(), pdwork.WebhookEvent{Object: "deal", Action: "change"})
	created, _, err := e.sim.ActAsUser(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "A"}})
	if err != nil {
		t.Fatal(err)
	}
	older := e.act(pdsim.UserAction{Object: "deal", Action: "change", ID: created.EntityID, Fields: map[string]any{"title": "B"}})
	e.clock.Advance(time.Second)
	newer := e.act(pdsim.UserAction{Object: "deal", Action: "change", ID: created.EntityID, Fields: map[string]any{"title": "C"}})
	msgs := e.jobsQueued(2, 5*time.Second)
	if len(msgs) != 2 {
		t.Fatalf("jobs queued = %d, want the two changes", len(msgs))
	}
	byEvent := map[string]sqstypes.Message{}
	for _, m := range msgs {
		byEvent[eventOf(t, m).ID] = m
	}
	for _, id := range []string{newer.ID, older.ID} { // the newer change first
		if failed := e.handleSQS(e.sqsEvent([]sqstypes.Message{byEvent[id]})); len(failed) != 0 {
			t.Errorf("batch failures = %v, want none", failed)
		}
	}
	d := e.decisionFor(eventOf(t, byEvent[older.ID]).Key())
	if d.Action != string(worker.OutcomeSkipped) || d.Reason != pdwork.ReasonStaleChange {
		t.Errorf("older change's decision = %s (%s), want skipped (stale_change)", d.Action, d.Reason)
	}
	if want := []string{"change@" + newer.Time.UTC().Format(time.RFC3339Nano)}; !slices.Equal(seen, want) {
		t.Errorf("events the app saw = %v, want only the newer change %v", seen, want)
	}
}

// TestWebhookNoteRetriedAtPipedrivesTime: the note call answers 429 Retry-After 7 first: the
// job is retried when Pipedrive said, the retry adds the note, one note in all.
func TestWebhookNoteRetriedAtPipedrivesTime(t *testing.T) {
	e := newEnv(t).notesApp()
	e.install(pdsim.DefaultUserID)
	e.subscribe(e.receiver(), pdwork.WebhookEvent{Object: "deal", Action: "create"})
	e.sim.Inject(pdsim.Fault{Method: "POST", Path: "/api/v1/notes", Status: 429, Times: 1, Header: http.Header{"Retry-After": {"7"}}})
	created := e.act(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "Busy deal"}})
	msgs := e.jobsQueued(1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("jobs queued = %d, want 1", len(msgs))
	}
	key := eventOf(t, msgs[0]).Key()
	if failed := e.handleSQS(e.sqsEvent(msgs)); len(failed) != 1 {
		t.Fatalf("batch failures = %v, want the event (retry)", failed)
	}
	if d := e.decisionFor(key); d.Action != string(worker.OutcomeRetry) || d.Reason != "rate_limited" || d.RetryAfterS != 7 || d.Status != 429 {
		t.Errorf("first run = %+v, want retry (rate_limited) in 7 s", d)
	}
	if got := e.notes(created.EntityID); len(got) != 0 {
		t.Errorf("notes after the 429 = %q, want none", got)
	}
	if failed := e.handleSQS(e.sqsEvent(msgs)); len(failed) != 0 {
		t.Errorf("retry failures = %v, want none", failed)
	}
	if d := e.decisionFor(key); d.Action != string(worker.OutcomeSucceeded) || d.Reason != pdwork.ReasonHandled || d.Status != 201 {
		t.Errorf("retry = %+v, want succeeded (handled) 201", d)
	}
	if got := e.notes(created.EntityID); !slices.Equal(got, []string{testNote}) {
		t.Errorf("notes = %q, want [%q]", got, testNote)
	}
	if c := e.sim.Counters().APIByRoute["POST /api/v1/notes"]; c != 2 {
		t.Errorf("POST /api/v1/notes = %d, want 2 (the 429 and the 201)", c)
	}
}

// TestWebhookPipedriveDown: every API call answers 500 for a while: the event is retried with
// the worker's backoff, then dead-lettered with its reason at the queue's last receive; redriven
// once Pipedrive is back, it adds the note once.
func TestWebhookPipedriveDown(t *testing.T) {
	e := newEnv(t).notesApp()
	e.install(pdsim.DefaultUserID)
	e.subscribe(e.receiver(), pdwork.WebhookEvent{Object: "deal", Action: "create"})
	down := e.sim.Inject(pdsim.Fault{Path: "/api/*", Status: 500})
	created := e.act(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "Unlucky deal"}})
	msgs := e.jobsQueued(1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("jobs queued = %d, want 1", len(msgs))
	}
	body, key := *msgs[0].Body, eventOf(t, msgs[0]).Key()
	max := e.h.Engine.Config.MaxReceives
	for n := 1; n <= max; n++ {
		ev := e.sqsEvent(msgs)
		ev.Records[0].Attributes["ApproximateReceiveCount"] = strconv.Itoa(n)
		failed := e.handleSQS(ev)
		d := e.decisionFor(key)
		if n < max {
			if len(failed) != 1 || d.Action != string(worker.OutcomeRetry) || d.Status != 500 || d.RetryAfterS != worker.CeilSeconds(worker.DefaultBackoff(n)) {
				t.Errorf("receive %d = %+v (failures %v), want retry after %v", n, d, failed, worker.DefaultBackoff(n))
			}
			continue
		}
		if len(failed) != 0 || d.Action != string(worker.OutcomeDeadLettered) || d.Reason != worker.ReasonRetriesExhausted {
			t.Errorf("last receive = %+v, want dead_lettered (retries_exhausted)", d)
		}
	}
	dead := e.deadLetters()
	if len(dead) != 1 || *dead[0].Body != body || attr(dead[0], "reason") != worker.ReasonRetriesExhausted {
		t.Fatalf("dead letters = %d, want the event with reason retries_exhausted", len(dead))
	}
	e.sim.RemoveFault(down)
	if got := e.notes(created.EntityID); len(got) != 0 {
		t.Fatalf("notes while Pipedrive was down = %q, want none", got)
	}
	// An operator redrives it (pdctl dlq redrive): one note, and a second redrive is a duplicate.
	for range 2 {
		if _, failed := e.deliver(body); len(failed) != 0 {
			t.Errorf("redrive failures = %v, want none", failed)
		}
	}
	if got := e.notes(created.EntityID); !slices.Equal(got, []string{testNote}) {
		t.Errorf("notes = %q, want [%q]", got, testNote)
	}
	if c := e.sim.Counters().APIByRoute["POST /api/v1/notes"]; c != 1 {
		t.Errorf("POST /api/v1/notes answered by Pipedrive = %d, want 1", c)
	}
}

// TestWebhookHTMLHeavyNoteIsHandled: a colleague writes a 120 KB HTML note (an email pasted
// into a deal). The simulator delivers it as Pipedrive does, HTML as it is; the real receiver
// queues it unescaped (a job about the delivery's size, within SQS's limit, where json.Marshal's
// escaping made six bytes of each <, > and &), and the app's handler runs once with the whole
// note.
func TestWebhookHTMLHeavyNoteIsHandled(t *testing.T) {
	var got []webhook.Event
	e := newEnv(t)
	e.h.Engine.Runners[jobs.KindWebhookEvent].(*pdwork.WebhookEvents).Handler = pdwork.EventHandlerFunc(
		func(_ context.Context, ev webhook.Event, _ *pdwork.Client) error {
			got = append(got, ev)
			return nil
		})
	e.addColleague()
	e.install(pdsim.DefaultUserID)
	e.subscribe(e.receiver(), pdwork.WebhookEvent{Object: "note", Action: "create"})
	deal := e.act(pdsim.UserAction{UserID: colleagueID, Object: "deal", Action: "create", Fields: map[string]any{"title": "Inbox"}})
	html := strings.Repeat(`<p style="margin:0">Hi &amp; thanks, <b>see below</b></p>`, 120*1024/56)
	e.act(pdsim.UserAction{UserID: colleagueID, Object: "note", Action: "create", Fields: map[string]any{"content": html, "deal_id": deal.EntityID}})
	e.deliveredOK(1)
	msgs := e.jobsQueued(1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("jobs queued = %d, want 1", len(msgs))
	}
	if n := len(*msgs[0].Body); n > len(html)+8*1024 || strings.Contains(*msgs[0].Body, `\u003c`) {
		t.Errorf("job for a %d-byte note is %d bytes (escaped %t), want about the note's size", len(html), n, strings.Contains(*msgs[0].Body, `\u003c`))
	}
	if failed := e.handleSQS(e.sqsEvent(msgs)); len(failed) != 0 {
		t.Errorf("batch failures = %v, want none", failed)
	}
	var data struct{ Content string }
	if len(got) != 1 || json.Unmarshal(got[0].Data, &data) != nil || data.Content != html || got[0].ActorUserID != colleagueID {
		t.Fatalf("handler runs = %d, want one with the whole %d-byte note by the colleague", len(got), len(html))
	}
}
