package apicall

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// registerJob is the job the callback enqueues after install version v.
func registerJob(v int) jobs.Job {
	return jobs.Job{ID: "register_webhooks:" + acme.String() + ":v" + strconv.Itoa(v), Kind: jobs.KindRegisterWebhooks,
		CompanyID: acme.CompanyID, UserID: acme.UserID}
}

func TestRegisterWebhooksCreatesEachOnce(t *testing.T) {
	e := newEnv(t, webhooks(pdwork.WebhookEvent{Object: "deal", Action: "*"}, pdwork.WebhookEvent{Object: "person", Action: "create"}))
	e.install(pdsim.DefaultUserID)

	res := e.direct(encode(t, registerJob(1)))
	if res.Outcome != worker.OutcomeSucceeded || res.Reason != "webhooks_registered" || res.Status != 201 {
		t.Errorf("Result = %+v, want succeeded (webhooks_registered) 201", res)
	}
	var sum pdwork.WebhookSummary
	if err := json.Unmarshal(res.Body, &sum); err != nil || len(sum.Created) != 2 || len(sum.Existing) != 0 {
		t.Errorf("Result.Body = %s (err %v), want two created", res.Body, err)
	}
	hooks := e.sim.Webhooks(pdsim.DefaultUserID)
	var got []string
	for _, h := range hooks {
		got = append(got, h.EventObject+"."+h.EventAction)
		if h.SubscriptionURL != "https://app.example/pipedrive/webhooks" || h.HTTPAuthUser != webhookCreds.User || h.HTTPAuthPassword != webhookPassword ||
			h.Name == "" || h.Version != "2.0" {
			t.Errorf("webhook %s: url %q, basic user %q, password from the secret %t, name %q, version %q; want the configured URL, the secret's Basic pair, a name and 2.0",
				h.EventObject+"."+h.EventAction, h.SubscriptionURL, h.HTTPAuthUser, h.HTTPAuthPassword == webhookPassword, h.Name, h.Version)
		}
	}
	if want := []string{"deal.*", "person.create"}; !slices.Equal(got, want) {
		t.Errorf("webhooks at Pipedrive = %v, want %v", got, want)
	}

	// The same job delivered twice more through the queue, in one batch: duplicates.
	body := encode(t, registerJob(1))
	if _, failed := e.deliver(body, body); len(failed) != 0 {
		t.Errorf("duplicate deliveries failed = %v, want none", failed)
	}
	// A reinstall enqueues a new job: it lists, finds both, creates nothing.
	res = e.direct(encode(t, registerJob(2)))
	if res.Outcome != worker.OutcomeSucceeded || res.Reason != "webhooks_exist" {
		t.Errorf("reinstall Result = %+v, want succeeded (webhooks_exist)", res)
	}
	if err := json.Unmarshal(res.Body, &sum); err != nil || len(sum.Created) != 0 || len(sum.Existing) != 2 {
		t.Errorf("reinstall Result.Body = %s, want two existing", res.Body)
	}
	c := e.sim.Counters().APIByRoute
	if c["POST /api/v1/webhooks"] != 2 || c["GET /api/v1/webhooks"] != 2 {
		t.Errorf("webhook calls = %d POST, %d GET; want 2 and 2 (one list per run that was not a duplicate)", c["POST /api/v1/webhooks"], c["GET /api/v1/webhooks"])
	}
	if n := len(e.sim.Webhooks(pdsim.DefaultUserID)); n != 2 {
		t.Errorf("webhooks at Pipedrive = %d, want 2", n)
	}
}

// TestRegisterWebhooksAtTheLimit: the user has 39 webhooks; the first of ours is the 40th, the
// second the 41st, which Pipedrive refuses with 422: dead-letter and alert.
func TestRegisterWebhooksAtTheLimit(t *testing.T) {
	e := newEnv(t, webhooks(pdwork.WebhookEvent{Object: "deal", Action: "*"}, pdwork.WebhookEvent{Object: "person", Action: "*"}))
	in := e.install(pdsim.DefaultUserID)
	api := &pdapi.Client{}
	for i := range 39 {
		if _, err := api.CreateWebhook(t.Context(), in.APIDomain, in.AccessToken, pdapi.NewWebhook{
			SubscriptionURL: "https://other-app.example/hook/" + strconv.Itoa(i), EventObject: "activity", EventAction: "*", Name: "other"}); err != nil {
			t.Fatalf("CreateWebhook #%d = %v", i+1, err)
		}
	}
	e.sim.ResetCounters()
	body := encode(t, registerJob(1))
	if _, failed := e.deliver(body); len(failed) != 0 {
		t.Errorf("batch item failures = %v, want none (dead-lettered)", failed)
	}
	dead := e.deadLetters()
	if len(dead) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dead))
	}
	wantDeadLetter(t, dead[0], body, "webhook_limit", 422)
	if got := e.alertReasons(); !slices.Equal(got, []string{"webhook_limit"}) {
		t.Errorf("alerts = %v, want webhook_limit", got)
	}
	if n := len(e.sim.Webhooks(pdsim.DefaultUserID)); n != 40 {
		t.Errorf("webhooks at Pipedrive = %d, want 40", n)
	}
	if got := e.apiCalls(); got[201] != 1 || got[422] != 1 {
		t.Errorf("simulator answers = %v, want one 201 and one 422", got)
	}
}

func TestRegisterWebhooksRefreshesAfter401(t *testing.T) {
	e := newEnv(t, webhooks(pdwork.WebhookEvent{Object: "deal", Action: "*"}))
	e.install(pdsim.DefaultUserID)
	e.sim.ExpireAccessTokens(pdsim.DefaultUserID)
	res := e.direct(encode(t, registerJob(1)))
	if res.Outcome != worker.OutcomeSucceeded {
		t.Errorf("Result = %+v, want succeeded", res)
	}
	if got := e.refreshes(); got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
	if n := len(e.sim.Webhooks(pdsim.DefaultUserID)); n != 1 {
		t.Errorf("webhooks at Pipedrive = %d, want 1", n)
	}
}

func TestRegisterWebhooksWithoutURLIsSkipped(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	if _, failed := e.deliver(encode(t, registerJob(1))); len(failed) != 0 {
		t.Errorf("batch item failures = %v, want none", failed)
	}
	d := e.decisionFor(registerJob(1).ID)
	if d.Action != string(worker.OutcomeSkipped) || d.Reason != pdwork.ReasonWebhookURLUnset || d.Kind != jobs.KindRegisterWebhooks {
		t.Errorf("decision = %+v, want skipped (webhook_url_unset)", d)
	}
	if got := e.apiCalls(); len(got) != 0 {
		t.Errorf("simulator answers = %v, want none", got)
	}
	if got := e.deadLetters(); len(got) != 0 {
		t.Errorf("dead letters = %d, want none", len(got))
	}
}

// TestLogsNeverContainSecrets runs refreshes, webhook registration with Basic credentials,
// failures and dead letters, and checks this test's log against every secret involved.
// TestMain repeats the check over the whole run's log.
func TestLogsNeverContainSecrets(t *testing.T) {
	e := newEnv(t, webhooks(pdwork.WebhookEvent{Object: "deal", Action: "*"}), withSim(func(c *pdsim.Config) { c.RotateRefreshTokens = true }))
	first := e.install(pdsim.DefaultUserID)
	e.sim.ExpireAccessTokens(pdsim.DefaultUserID)
	e.direct(encode(t, registerJob(1)))                                // 401, refresh, list, create
	e.clock.Advance(2 * time.Hour)                                     // expired: refresh first
	e.deliver(encode(t, job("log-404", "GET", "/api/v2/deals/1", ""))) // dead letter
	e.deliver(`{"id":"log-bad","kind":"api_call","company_id":1}`)     // invalid job
	now, err := e.store.Get(t.Context(), acme)
	if err != nil {
		t.Fatal(err)
	}
	mine := &testenv.Secrets{}
	mine.Add("first access token", first.AccessToken)
	mine.Add("first refresh token", first.RefreshToken)
	mine.Add("current access token", now.AccessToken)
	mine.Add("current refresh token", now.RefreshToken)
	mine.Add("client secret", testenv.ClientSecret)
	mine.Add("webhook password", webhookPassword)
	if mine.Len() != 6 || now.AccessToken == first.AccessToken {
		t.Fatalf("collected %d distinct secrets (token refreshed %t), want 6 and a refreshed token", mine.Len(), now.AccessToken != first.AccessToken)
	}
	out := e.log.String()
	if len(e.decisions()) < 3 || !strings.Contains(out, `"action":"refreshed"`) {
		t.Fatalf("log lacks the expected events:\n%s", out)
	}
	if leaks := mine.FoundIn(out); len(leaks) > 0 {
		t.Errorf("log contains %v", leaks)
	}
}

// TestRegisterWebhooksOfTwoInstallsRunOneAtATime: two installs in quick succession enqueue two
// register_webhooks jobs (one per install version) that can run in one batch; both would list
// no webhooks and both create every one. One registration per installation runs at a time.
func TestRegisterWebhooksOfTwoInstallsRunOneAtATime(t *testing.T) {
	e := newEnv(t, webhooks(pdwork.WebhookEvent{Object: "deal", Action: "*"}, pdwork.WebhookEvent{Object: "person", Action: "*"}))
	e.install(pdsim.DefaultUserID)
	// Slow creates: both jobs have listed before either webhook exists.
	e.sim.Inject(pdsim.Fault{Method: "POST", Path: "/api/v1/webhooks", Latency: 300 * time.Millisecond})
	q := e.undelayed()
	_, failed := e.deliver(encode(t, registerJob(1)), encode(t, registerJob(2)))
	if n := len(e.sim.Webhooks(pdsim.DefaultUserID)); n != 2 {
		t.Errorf("webhooks at Pipedrive after one batch of both jobs = %d, want 2", n)
	}
	if len(failed) != 0 {
		t.Fatalf("batch item failures = %v, want none (the job that waited for the other is deferred, not retried)", failed)
	}
	if delays := q.sent(); len(delays) != 1 {
		t.Fatalf("copies re-sent = %v, want the job that waited for the other", delays)
	}
	// The postponed job comes back and finds every webhook.
	back := e.receive(e.res.JobsQueueURL, 1, 5*time.Second)
	if len(back) != 1 {
		t.Fatalf("received %d messages, want the postponed job's copy", len(back))
	}
	if failed := e.handleSQS(e.sqsEvent(back)); len(failed) != 0 {
		t.Errorf("postponed delivery failures = %v, want none", failed)
	}
	if d := e.decisions(); d[len(d)-1].Action != string(worker.OutcomeSucceeded) || d[len(d)-1].Reason != "webhooks_exist" {
		t.Errorf("postponed delivery decision = %s (%s), want succeeded (webhooks_exist)", d[len(d)-1].Action, d[len(d)-1].Reason)
	}
	if n := len(e.sim.Webhooks(pdsim.DefaultUserID)); n != 2 {
		t.Errorf("webhooks at Pipedrive = %d, want 2", n)
	}
}

// TestRegisterWebhooksReplacesOldCredentials: an older deployment registered the receiver's
// webhook as v1 with its own Basic pair (WEBHOOK_USER/WEBHOOK_PASSWORD); the receiver answers
// its deliveries 401. The next register_webhooks job deletes it and creates a v2 webhook with
// the secret's pair, whose deliveries the receiver accepts.
func TestRegisterWebhooksReplacesOldCredentials(t *testing.T) {
	e := newEnv(t)
	in := e.install(pdsim.DefaultUserID)
	url := e.receiver()
	old, err := (&pdapi.Client{HTTP: e.sim.HTTP.Client()}).CreateWebhook(t.Context(), in.APIDomain, in.AccessToken, pdapi.NewWebhook{
		SubscriptionURL: url, EventObject: "deal", EventAction: "added", Name: "old deployment", Version: "1.0",
		HTTPAuthUser: "old-webhook-user", HTTPAuthPassword: "old-webhook-password"})
	if err != nil {
		t.Fatal(err)
	}
	e.act(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "Lost deal"}})
	if ds := e.sim.Deliveries(); len(ds) != 1 || ds[0].Status != http.StatusUnauthorized {
		t.Fatalf("deliveries with the old pair = %+v, want one answered 401", ds)
	}

	e.sim.ClearDeliveries()
	e.sim.ResetCounters()
	e.h.Engine.Runners[jobs.KindRegisterWebhooks].(*pdwork.RegisterWebhooks).Config = pdwork.WebhookConfig{
		URL: url, Events: []pdwork.WebhookEvent{{Object: "deal", Action: "create"}}}
	res := e.direct(encode(t, registerJob(1)))
	var sum pdwork.WebhookSummary
	if err := json.Unmarshal(res.Body, &sum); err != nil || res.Reason != "webhooks_registered" || len(sum.Replaced) != 1 ||
		sum.Replaced[0].ID != old.ID || len(sum.Created) != 1 || len(sum.Existing) != 0 {
		t.Errorf("register_webhooks = %s (%s), Body %s (err %v); want the old webhook replaced and one created", res.Outcome, res.Reason, res.Body, err)
	}
	hooks := e.sim.Webhooks(pdsim.DefaultUserID)
	if len(hooks) != 1 || hooks[0].ID == old.ID || hooks[0].Version != "2.0" || hooks[0].HTTPAuthUser != webhookCreds.User ||
		hooks[0].HTTPAuthPassword != webhookPassword || hooks[0].EventAction != "create" {
		t.Fatalf("webhooks at Pipedrive = %d, want one new v2 deal.create webhook with the secret's Basic pair", len(hooks))
	}
	if c := e.sim.Counters().APIByRoute; c["DELETE /api/v1/webhooks/{id}"] != 1 || c["POST /api/v1/webhooks"] != 1 {
		t.Errorf("webhook calls = %d DELETE, %d POST; want 1 and 1", c["DELETE /api/v1/webhooks/{id}"], c["POST /api/v1/webhooks"])
	}
	e.act(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "Received deal"}})
	e.deliveredOK(1)
}
