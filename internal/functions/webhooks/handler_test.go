package webhooks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

var (
	runLog  testenv.Buffer
	secrets testenv.Secrets
	// creds is the Basic pair the provisioned secret yields (derived from testenv.StateKey).
	creds = webhook.DeriveCredentials([]byte(testenv.StateKey))
)

func TestMain(m *testing.M) {
	secrets.Add("webhook password", creds.Password)
	secrets.Add("webhook Authorization header", basic(creds.User, creds.Password))
	os.Exit(testenv.MainCheckingLogs(m, &runLog, &secrets))
}

var acme = tokenstore.InstallationID{CompanyID: 3408256, UserID: 5206648}

// env is one test's receiver on its own table and queue.
type env struct {
	t     *testing.T
	h     *handler
	res   *infra.Resources
	store *tokenstore.Store
	sqs   *sqs.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	store := &tokenstore.Store{DB: testenv.SerialWrites(dynamodb.NewFromConfig(cfg)), Table: res.TableName}
	src := &clientcreds.Source{Client: secretsmanager.NewFromConfig(cfg), SecretID: res.SecretID}
	q := sqs.NewFromConfig(cfg)
	e := &env{t: t, res: res, store: store, sqs: q,
		h: &handler{creds: src, events: store, jobs: &jobs.Enqueuer{SQS: q, QueueURL: res.JobsQueueURL},
			log: slog.New(slog.NewJSONHandler(&runLog, nil))}}
	return e
}

func (e *env) install(id tokenstore.InstallationID) {
	e.t.Helper()
	if _, err := e.store.Install(e.t.Context(), tokenstore.Installation{ID: id, AccessToken: "v1u:a", RefreshToken: "1:1:r",
		APIDomain: "https://acme.pipedrive.com", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		e.t.Fatal(err)
	}
}

// deliver sends body with the given Authorization header, as API Gateway hands it over.
func (e *env) deliver(auth, body string) events.APIGatewayV2HTTPResponse {
	e.t.Helper()
	req := events.APIGatewayV2HTTPRequest{
		RouteKey: "POST /pipedrive/webhooks",
		Headers:  map[string]string{"content-type": "application/json"},
		Body:     body,
	}
	req.RequestContext.HTTP.Method = http.MethodPost
	if auth != "" {
		req.Headers["authorization"] = auth
	}
	resp, err := e.h.handle(e.t.Context(), req)
	if err != nil {
		e.t.Fatalf("handle = %v, want an HTTP answer", err)
	}
	return resp
}

// queued drains the jobs queue.
func (e *env) queued() []jobs.Job {
	e.t.Helper()
	var out []jobs.Job
	for _, m := range testenv.ReceiveAll(e.t, testenv.AWS(e.t), e.res.JobsQueueURL, 10, 500*time.Millisecond) {
		j, err := jobs.Parse(*m.Body)
		if err != nil {
			e.t.Fatalf("queued message is not a job: %v", err)
		}
		out = append(out, j)
	}
	return out
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func v2(eventID, action string, attempt int) string {
	return `{"meta":{"action":"` + action + `","entity":"deal","entity_id":101,"company_id":3408256,"user_id":5206648,` +
		`"id":"` + eventID + `","correlation_id":"c-1","timestamp":"2026-11-30T12:00:01.123Z","version":"2.0","webhook_id":"77",` +
		`"attempt":` + strconv.Itoa(attempt) + `,"host":"acme.pipedrive.com","type":"general"},` +
		`"data":{"id":101,"title":"Big deal"},"previous":null}`
}

func reply(t *testing.T, resp events.APIGatewayV2HTTPResponse) (status int, action, reason string) {
	t.Helper()
	var b struct{ Status, Reason string }
	if err := json.Unmarshal([]byte(resp.Body), &b); err != nil {
		t.Fatalf("answer body %q is not JSON: %v", resp.Body, err)
	}
	return resp.StatusCode, b.Status, b.Reason
}

func TestAcceptedEventBecomesOneJob(t *testing.T) {
	e := newEnv(t)
	e.install(acme)
	good := basic(creds.User, creds.Password)
	if st, act, _ := reply(t, e.deliver(good, v2("ev-1", "create", 1))); st != 200 || act != "accepted" {
		t.Fatalf("first delivery = %d %s, want 200 accepted", st, act)
	}
	// Pipedrive's retry of the same event (next attempt) is recognised.
	if st, act, _ := reply(t, e.deliver(good, v2("ev-1", "create", 2))); st != 200 || act != "duplicate" {
		t.Fatalf("retried delivery = %d %s, want 200 duplicate", st, act)
	}
	got := e.queued()
	if len(got) != 1 {
		t.Fatalf("queued %d jobs, want 1", len(got))
	}
	j := got[0]
	if j.Kind != jobs.KindWebhookEvent || j.ID != "webhook#3408256:5206648#ev-1" || j.CompanyID != acme.CompanyID || j.UserID != acme.UserID {
		t.Errorf("job = %+v", j)
	}
	var ev webhook.Event
	if err := json.Unmarshal(j.Body, &ev); err != nil || ev.Entity != "deal" || ev.EntityID != "101" || ev.Action != "create" || !strings.Contains(string(ev.Data), "Big deal") {
		t.Errorf("job body = %s (%v), want the event", j.Body, err)
	}
}

func TestConcurrentDeliveriesOfOneEvent(t *testing.T) {
	e := newEnv(t)
	e.install(acme)
	good := basic(creds.User, creds.Password)
	var wg sync.WaitGroup
	var mu sync.Mutex
	actions := map[string]int{}
	for i := range 3 {
		wg.Go(func() {
			_, act, _ := reply(t, e.deliver(good, v2("ev-same", "create", i+1)))
			mu.Lock()
			actions[act]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if actions["accepted"] != 1 || actions["duplicate"] != 2 {
		t.Errorf("answers = %v, want 1 accepted and 2 duplicate", actions)
	}
	if n := len(e.queued()); n != 1 {
		t.Errorf("queued %d jobs, want 1", n)
	}
}

func TestRejectedDeliveriesEnqueueNothing(t *testing.T) {
	e := newEnv(t)
	e.install(acme)
	good := basic(creds.User, creds.Password)
	tests := []struct {
		name, auth, body string
		want             int
		reason           string
	}{
		{"no credentials", "", v2("ev-a", "create", 1), 401, "unauthorized"},
		{"wrong password", basic(creds.User, creds.Password+"x"), v2("ev-b", "create", 1), 401, "unauthorized"},
		{"wrong user", basic("someone", creds.Password), v2("ev-c", "create", 1), 401, "unauthorized"},
		{"client secret instead", basic(testenv.ClientID, testenv.ClientSecret), v2("ev-d", "create", 1), 401, "unauthorized"},
		{"garbage body", good, "not json at all", 400, "malformed"},
		{"truncated JSON", good, v2("ev-e", "create", 1)[:80], 400, "malformed"},
		{"unknown action", good, v2("ev-f", "explode", 1), 400, "malformed"},
		{"empty body", good, "", 400, "malformed"},
		{"oversized", good, `{"meta":{},"data":"` + strings.Repeat("x", webhook.MaxBody) + `"}`, 413, "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, act, reason := reply(t, e.deliver(tt.auth, tt.body))
			if st != tt.want || act != "rejected" || reason != tt.reason {
				t.Errorf("deliver = %d %s %s, want %d rejected %s", st, act, reason, tt.want, tt.reason)
			}
		})
	}
	if n := len(e.queued()); n != 0 {
		t.Errorf("rejected deliveries queued %d jobs, want 0", n)
	}
	// A rejected (unauthorized) delivery did not mark the event as seen.
	if _, act, _ := reply(t, e.deliver(good, v2("ev-a", "create", 2))); act != "accepted" {
		t.Errorf("the authorized retry of an unauthorized delivery = %s, want accepted", act)
	}
}

func TestEventsForUnknownOrUninstalledInstallationsAreDropped(t *testing.T) {
	e := newEnv(t)
	good := basic(creds.User, creds.Password)
	if st, act, reason := reply(t, e.deliver(good, v2("ev-unknown", "create", 1))); st != 200 || act != "dropped" || reason != "installation_not_found" {
		t.Errorf("unknown installation = %d %s %s, want 200 dropped installation_not_found", st, act, reason)
	}
	e.install(acme)
	if _, err := e.store.Uninstall(t.Context(), acme); err != nil {
		t.Fatal(err)
	}
	if st, act, reason := reply(t, e.deliver(good, v2("ev-gone", "create", 1))); st != 200 || act != "dropped" || reason != "installation_uninstalled" {
		t.Errorf("uninstalled = %d %s %s, want 200 dropped installation_uninstalled", st, act, reason)
	}
	if n := len(e.queued()); n != 0 {
		t.Errorf("dropped events queued %d jobs, want 0", n)
	}
}

func TestV1PayloadAndBase64Body(t *testing.T) {
	e := newEnv(t)
	e.install(acme)
	body, err := os.ReadFile("../../webhook/testdata/v1_deal_updated.json")
	if err != nil {
		t.Fatal(err)
	}
	req := events.APIGatewayV2HTTPRequest{Headers: map[string]string{"Authorization": basic(creds.User, creds.Password)},
		Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true}
	req.RequestContext.HTTP.Method = http.MethodPost
	resp, err := e.h.handle(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if st, act, _ := reply(t, resp); st != 200 || act != "accepted" {
		t.Fatalf("v1 delivery = %d %s, want 200 accepted", st, act)
	}
	got := e.queued()
	if len(got) != 1 {
		t.Fatalf("queued %d, want 1", len(got))
	}
	var ev webhook.Event
	_ = json.Unmarshal(got[0].Body, &ev)
	if ev.Version != "1.0" || ev.Action != "change" || ev.Entity != "deal" || ev.EntityID != "101" {
		t.Errorf("v1 event = %+v, want the v2 shape (change deal 101)", ev)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	req := events.APIGatewayV2HTTPRequest{}
	req.RequestContext.HTTP.Method = http.MethodGet
	resp, _ := e.h.handle(t.Context(), req)
	if resp.StatusCode != 405 {
		t.Errorf("GET = %d, want 405", resp.StatusCode)
	}
}

// failingQueue refuses every job, as SQS does during an outage.
type failingQueue struct{}

func (failingQueue) Enqueue(context.Context, jobs.Job) error { return context.DeadlineExceeded }

func TestEnqueueFailureAnswers503AndKeepsTheEventAcceptable(t *testing.T) {
	e := newEnv(t)
	e.install(acme)
	good := basic(creds.User, creds.Password)
	working := e.h.jobs
	e.h.jobs = failingQueue{}
	if st, act, reason := reply(t, e.deliver(good, v2("ev-retry", "create", 1))); st != 503 || act != "failed" || reason != "enqueue_failed" {
		t.Fatalf("delivery during a queue outage = %d %s %s, want 503 failed enqueue_failed", st, act, reason)
	}
	e.h.jobs = working
	if st, act, _ := reply(t, e.deliver(good, v2("ev-retry", "create", 2))); st != 200 || act != "accepted" {
		t.Fatalf("Pipedrive's retry after the outage = %d %s, want 200 accepted", st, act)
	}
	if n := len(e.queued()); n != 1 {
		t.Errorf("queued %d, want 1", n)
	}
}
