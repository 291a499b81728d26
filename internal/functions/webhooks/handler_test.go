package webhooks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

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

func newEnv(t *testing.T, faults ...*fault) *env {
	t.Helper()
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	var ddbFaults, sqsFaults []func(*middleware.Stack) error
	for _, f := range faults {
		if f.service == "sqs" {
			sqsFaults = append(sqsFaults, f.middleware)
		} else {
			ddbFaults = append(ddbFaults, f.middleware)
		}
	}
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, ddbFaults...) })
	store := &tokenstore.Store{DB: testenv.SerialWrites(db), Table: res.TableName}
	src := &clientcreds.Source{Client: secretsmanager.NewFromConfig(cfg), SecretID: res.SecretID}
	q := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.APIOptions = append(o.APIOptions, sqsFaults...) })
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

// invocationTimeout is the deadline deliveries run under, as Lambda gives the receiver
// (template.yaml's WebhooksFunction Timeout).
const invocationTimeout = 10 * time.Second

// deliver sends body with the given Authorization header, as API Gateway hands it over, under
// an invocation deadline, and returns what the receiver decided (logged as the function logs
// it). The HTTP answer of every decision is checked: okBody for every 200.
func (e *env) deliver(auth, body string) answer {
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
	ctx, cancel := context.WithTimeout(e.t.Context(), invocationTimeout)
	defer cancel()
	a := e.h.receive(ctx, req)
	e.h.logAnswer(ctx, req, a)
	if resp := respond(a); resp.StatusCode != a.status || (a.status == 200) != (resp.Body == okBody) {
		e.t.Errorf("answer of %s/%s = %d %s", a.action, a.reason, resp.StatusCode, resp.Body)
	}
	return a
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

// colleague is another user of acme's company: most changes in a team are a colleague's.
const colleague = 7700001

// v2 is a v2 delivery of event eventID to acme's webhook, made by a colleague (ids as strings,
// as in Pipedrive's examples).
func v2(eventID, action string, attempt int) string {
	return v2By(eventID, action, attempt, colleague, acme.UserID)
}

// v2By is a v2 delivery of a change made by actor to owner's webhook in acme's company.
func v2By(eventID, action string, attempt int, actor, owner int64) string {
	return `{"meta":{"action":"` + action + `","entity":"deal","entity_id":"101","company_id":"3408256","user_id":"` + strconv.FormatInt(actor, 10) + `",` +
		`"webhook_owner_id":"` + strconv.FormatInt(owner, 10) + `",` +
		`"id":"` + eventID + `","correlation_id":"c-1","timestamp":"2026-11-30T12:00:01.123Z","version":"2.0","webhook_id":"77",` +
		`"attempt":` + strconv.Itoa(attempt) + `,"host":"acme.pipedrive.com","type":"application"},` +
		`"data":{"id":101,"title":"Big deal"},"previous":null}`
}

func reply(_ *testing.T, a answer) (status int, action, reason string) {
	return a.status, a.action, a.reason
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
	// A colleague made the change; the event is the owner's (acme), and says who did it.
	if ev.UserID != acme.UserID || ev.ActorUserID != colleague {
		t.Errorf("event owner %d, actor %d; want %d (the webhook's owner) and %d (the colleague)", ev.UserID, ev.ActorUserID, acme.UserID, colleague)
	}
}

// TestTwoInstallationsOfOneCompanyEachGetTheirCopy: when the colleague installed the app too,
// Pipedrive delivers one event to both users' webhooks (same meta.id); each installation gets
// its own job, and neither copy is deduped away as the other's duplicate.
func TestTwoInstallationsOfOneCompanyEachGetTheirCopy(t *testing.T) {
	e := newEnv(t)
	e.install(acme)
	grace := tokenstore.InstallationID{CompanyID: acme.CompanyID, UserID: colleague}
	e.install(grace)
	good := basic(creds.User, creds.Password)
	for _, owner := range []int64{acme.UserID, colleague} {
		if st, act, _ := reply(t, e.deliver(good, v2By("ev-both", "create", 1, colleague, owner))); st != 200 || act != "accepted" {
			t.Fatalf("delivery to %d's webhook = %d %s, want 200 accepted", owner, st, act)
		}
	}
	got := e.queued()
	var ids []string
	for _, j := range got {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	if want := []string{"webhook#3408256:5206648#ev-both", "webhook#3408256:7700001#ev-both"}; !slices.Equal(ids, want) {
		t.Errorf("jobs = %v, want one per installation %v", ids, want)
	}
}

// TestAnswersDoNotRevealInstallations: a delivery for a company that never installed the app
// is answered exactly like an accepted one; only the log tells them apart.
func TestAnswersDoNotRevealInstallations(t *testing.T) {
	e := newEnv(t)
	e.install(acme)
	good := basic(creds.User, creds.Password)
	req := func(body string) events.APIGatewayV2HTTPRequest {
		r := events.APIGatewayV2HTTPRequest{Headers: map[string]string{"authorization": good}, Body: body}
		r.RequestContext.HTTP.Method = http.MethodPost
		return r
	}
	installed, err := e.h.handle(t.Context(), req(v2("ev-known", "create", 1)))
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := e.h.handle(t.Context(), req(strings.ReplaceAll(v2("ev-probe", "create", 1), `"3408256"`, `"999999"`)))
	if err != nil {
		t.Fatal(err)
	}
	if installed.StatusCode != stranger.StatusCode || installed.Body != stranger.Body || installed.Body != okBody {
		t.Errorf("answers: installed %d %s, not installed %d %s; want the same", installed.StatusCode, installed.Body, stranger.StatusCode, stranger.Body)
	}
}

// TestFutureTimestampIsClamped: a timestamp a day ahead (a forged one, or a millisecond epoch
// misread) is set to the receiver's clock, so it cannot hide the entity's later changes.
func TestFutureTimestampIsClamped(t *testing.T) {
	e := newEnv(t)
	e.install(acme)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	e.h.now = func() time.Time { return now }
	body := strings.Replace(v2("ev-future", "change", 1), "2026-11-30T12:00:01.123Z", "2026-12-01T12:00:00.000Z", 1)
	a := e.deliver(basic(creds.User, creds.Password), body)
	if a.action != "accepted" || !a.clamped {
		t.Fatalf("future delivery = %s clamped %t, want accepted and clamped", a.action, a.clamped)
	}
	got := e.queued()
	var ev webhook.Event
	if len(got) != 1 || json.Unmarshal(got[0].Body, &ev) != nil || !ev.Timestamp.Equal(now) {
		t.Errorf("queued event timestamp = %v, want the receiver's clock %v", ev.Timestamp, now)
	}
	if !strings.Contains(runLog.String(), `"timestamp_clamped":true`) {
		t.Errorf("the clamp is not logged")
	}
}

// TestHTMLHeavyEventIsQueuedUnescaped: a 120 KB delivery of HTML (notes, emails) is queued as
// it came: no \u003c for each <, so the job stays near the delivery's size and within SQS's.
func TestHTMLHeavyEventIsQueuedUnescaped(t *testing.T) {
	e := newEnv(t)
	e.install(acme)
	html := strings.Repeat(`<p class=\"x\">A &amp; B <b>bold</b></p>`, 120*1024/40)
	body := strings.Replace(v2("ev-html", "create", 1), `"title":"Big deal"`, `"title":"Big deal","notes":"`+html+`"`, 1)
	if len(body) < 120*1024 || len(body) > webhook.MaxBody {
		t.Fatalf("test body is %d bytes, want about 120 KB", len(body))
	}
	if st, act, reason := reply(t, e.deliver(basic(creds.User, creds.Password), body)); st != 200 || act != "accepted" {
		t.Fatalf("HTML-heavy delivery = %d %s %s, want 200 accepted", st, act, reason)
	}
	// The worker runs it: the app's handler gets the event with its HTML as it came.
	w := e.worker()
	msgs := w.drain(t, e)
	if len(msgs) != 1 {
		t.Fatalf("queued %d, want 1", len(msgs))
	}
	m := *msgs[0].Body
	if strings.Contains(m, `\u003c`) || len(m) > len(body)+2048 {
		t.Errorf("queued message is %d bytes for a %d-byte delivery (escaped: %t), want about the same", len(m), len(body), strings.Contains(m, `\u003c`))
	}
	if n, ev := w.n.Load(), w.last; n != 1 || ev.DataOmitted || !strings.Contains(string(ev.Data), "<b>bold</b>") || len(ev.Data) < 120*1024 {
		t.Errorf("handler runs = %d, data %d bytes (omitted %t); want one run with the whole HTML", n, len(ev.Data), ev.DataOmitted)
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
	// The others find the record pending (503, Pipedrive retries) or, once confirmed, seen.
	if actions["accepted"] != 1 || actions["duplicate"]+actions["failed"] != 2 {
		t.Errorf("answers = %v, want 1 accepted and 2 duplicate or failed (in_progress)", actions)
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
		{"entity id not an id", good, strings.Replace(v2("ev-g", "create", 1), `"entity_id":"101"`, `"entity_id":"../101"`, 1), 400, "malformed"},
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

// TestCredentialsOfAnotherInstallationAre401: the join between the credentials and the
// payload's owner. Credentials that belong to one installation cannot deliver another's event:
// 401 before any DynamoDB write. (The deployment-wide pair, the zero caller, may deliver all.)
func TestCredentialsOfAnotherInstallationAre401(t *testing.T) {
	tests := []struct {
		name          string
		caller, owner tokenstore.InstallationID
		want          bool
	}{
		{"deployment-wide pair", tokenstore.InstallationID{}, acme, true},
		{"own installation", acme, acme, true},
		{"colleague's installation", tokenstore.InstallationID{CompanyID: acme.CompanyID, UserID: colleague}, acme, false},
		{"other company", tokenstore.InstallationID{CompanyID: 1, UserID: acme.UserID}, acme, false},
	}
	for _, tt := range tests {
		if got := mayActFor(tt.caller, tt.owner); got != tt.want {
			t.Errorf("mayActFor(%s) = %t, want %t", tt.name, got, tt.want)
		}
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
	// v1 names no owner: until its webhook id is recorded, the event has nowhere to go.
	if st, act, reason := reply(t, e.deliver(basic(creds.User, creds.Password), string(body))); st != 200 || act != "dropped" || reason != "webhook_unknown" {
		t.Fatalf("v1 delivery of an unrecorded webhook = %d %s %s, want 200 dropped webhook_unknown", st, act, reason)
	}
	if err := e.store.RecordWebhookOwner(t.Context(), "12", acme); err != nil {
		t.Fatal(err)
	}
	req := events.APIGatewayV2HTTPRequest{Headers: map[string]string{"Authorization": basic(creds.User, creds.Password)},
		Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true}
	req.RequestContext.HTTP.Method = http.MethodPost
	if a := e.h.receive(t.Context(), req); a.status != 200 || a.action != "accepted" {
		t.Fatalf("v1 delivery = %d %s %s, want 200 accepted", a.status, a.action, a.reason)
	}
	got := e.queued()
	if len(got) != 1 {
		t.Fatalf("queued %d, want 1", len(got))
	}
	var ev webhook.Event
	_ = json.Unmarshal(got[0].Body, &ev)
	if ev.Version != "1.0" || ev.Action != "change" || ev.Entity != "deal" || ev.EntityID != "101" || ev.Installation() != acme || ev.ActorUserID != acme.UserID {
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
