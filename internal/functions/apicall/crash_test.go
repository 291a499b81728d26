package apicall

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// crashTimeout is the function timeout of the crash tests: short, because the claim of a run
// that died is taken over once the invocation's deadline and worker.ClaimLeaseMargin passed.
const crashTimeout = 8 * time.Second

// crashWorld is a deployed worker against moto and the simulator, as the crash tests use it.
type crashWorld struct {
	t     *testing.T
	sim   *pdsimtest.TestServer
	store *tokenstore.Store
	q     *sqs.Client
	env   []string
	inbox *testenv.AlertInbox
	res   *infra.Resources
	// rie and bootstrap are built once: every instance runs the same binary.
	rie, bootstrap string
	// queueURL, dlqURL, queueARN are the provisioned jobs queues.
	queueURL, dlqURL, queueARN string
}

func newCrashWorld(t *testing.T) *crashWorld {
	t.Helper()
	res := testenv.Provision(t)
	sim := pdsimtest.New(t, pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret})
	store := &tokenstore.Store{DB: dynamodb.NewFromConfig(testenv.AWS(t)), Table: res.TableName, Cipher: testenv.Cipher(t, res)}
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
	if _, err := store.Install(t.Context(), tokenstore.Installation{
		ID: acme, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: tok.APIDomain,
		Scopes: strings.Split(tok.Scope, ","), ExpiresAt: time.Now().Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	rie, err := lambdarun.RIEPath(bctx, testenv.ModuleRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	bootstrap, err := lambdarun.Build(bctx, testenv.ModuleRoot(t), "./functions/apicall", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &crashWorld{
		t: t, res: res, rie: rie, bootstrap: bootstrap, sim: sim, store: store, q: sqs.NewFromConfig(testenv.AWS(t)),
		env:      append(testenv.FunctionEnv(t, res, "ApiCallFunction"), "PIPEDRIVE_OAUTH_URL="+sim.URL),
		inbox:    testenv.SubscribeAlerts(t, testenv.AWS(t), res.AlertsTopicARN),
		queueURL: res.JobsQueueURL, dlqURL: res.DeadLetterQueueURL, queueARN: res.JobsQueueARN,
	}
}

// start runs a fresh worker instance (the real bootstrap under the emulator).
func (w *crashWorld) start(name string) *lambdarun.Function {
	w.t.Helper()
	f, err := lambdarun.Start(w.t.Context(), lambdarun.Options{
		RIE: w.rie, Bootstrap: w.bootstrap,
		Name:    "ApiCallFunction",
		Env:     append(w.env, "AWS_LAMBDA_LOG_STREAM_NAME=2026/12/07/[$LATEST]"+name),
		Timeout: crashTimeout,
		Output:  io.MultiWriter(logSink, testenv.TestLogWriter(w.t)),
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { f.Close() })
	return f
}

// receive takes the one message of the jobs queue and builds the SQS event of its delivery.
func (w *crashWorld) receive(ctx context.Context) events.SQSEvent {
	w.t.Helper()
	out, err := w.q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.queueURL), WaitTimeSeconds: 2,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
	if err != nil || len(out.Messages) != 1 {
		w.t.Fatalf("ReceiveMessage = %d messages, %v; want 1", len(out.Messages), err)
	}
	m := out.Messages[0]
	return events.SQSEvent{Records: []events.SQSMessage{{MessageId: *m.MessageId, ReceiptHandle: *m.ReceiptHandle, Body: *m.Body,
		Attributes: m.Attributes, EventSource: "aws:sqs", EventSourceARN: w.queueARN}}}
}

// redeliver makes the message of ev visible again, as the queue's visibility timeout does
// after a worker died with it, and receives it a second time.
func (w *crashWorld) redeliver(ctx context.Context, ev events.SQSEvent) events.SQSEvent {
	w.t.Helper()
	if _, err := w.q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(w.queueURL),
		ReceiptHandle: aws.String(ev.Records[0].ReceiptHandle), VisibilityTimeout: 0}); err != nil {
		w.t.Fatal(err)
	}
	again := w.receive(ctx)
	if again.Records[0].MessageId != ev.Records[0].MessageId || again.Records[0].Attributes["ApproximateReceiveCount"] != "2" {
		w.t.Fatalf("second delivery = %+v, want the same message received twice", again.Records[0])
	}
	return again
}

// deals lists the titles of the deals at the simulator, through its API.
func (w *crashWorld) deals(ctx context.Context) []string {
	w.t.Helper()
	in, err := w.store.Get(ctx, acme)
	if err != nil {
		w.t.Fatal(err)
	}
	secrets.Add("access token", in.AccessToken)
	secrets.Add("refresh token", in.RefreshToken)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.sim.URL+"/api/v2/deals", nil)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+in.AccessToken)
	resp, err := w.sim.HTTP.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			Title string `json:"title"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		w.t.Fatalf("GET /api/v2/deals = %d, %v", resp.StatusCode, err)
	}
	var titles []string
	for _, d := range list.Data {
		titles = append(titles, d.Title)
	}
	return titles
}

// killMidCall delivers body to a worker, holds its POST at the simulator, kills the worker
// (SIGKILL, as an out-of-memory kill would) and lets the simulator carry the POST out after
// the kill. It returns the delivery and the time from which the dead run's claim lapses.
func (w *crashWorld) killMidCall(ctx context.Context, body string) (events.SQSEvent, time.Time) {
	w.t.Helper()
	fault := w.sim.Inject(pdsim.Fault{Method: http.MethodPost, Path: "/api/v1/deals", Hang: true, Complete: true, Times: 1})
	if _, err := w.q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(w.queueURL), MessageBody: aws.String(body)}); err != nil {
		w.t.Fatal(err)
	}
	ev := w.receive(ctx)
	f := w.start("crashing")
	done := make(chan error, 1)
	go func() { done <- f.InvokeJSON(ctx, ev, nil) }()
	for w.sim.Counters().Faults[fault] == 0 {
		select {
		case err := <-done:
			w.t.Fatalf("the worker returned (%v) before its POST reached the simulator", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	f.Kill()
	// The dead run claimed the job before its POST, so before now, with a lease of its
	// remaining time (at most crashTimeout, counted from the emulator's receipt of the
	// invocation, also before now) plus ClaimLeaseMargin, rounded up to a second. Counted
	// from before the invocation instead, a slow start on a loaded machine outlasted the
	// second of slack and the next worker met a live claim.
	lapses := time.Now().Add(crashTimeout + worker.ClaimLeaseMargin + time.Second)
	if err := <-done; err == nil {
		w.t.Fatalf("invocation of the killed worker = nil error, want it cut off")
	}
	for deadline := time.Now().Add(5 * time.Second); len(w.deals(ctx)) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			w.t.Fatalf("the held POST was not carried out after the kill")
		}
	}
	return ev, lapses
}

// TestKilledWorkerPOSTIsNotSentAgain: a worker dies (killed) while its POST, not retry-safe, is
// at Pipedrive, which creates the deal after the kill. The queue delivers the job again; the
// next worker takes the dead run's claim over, sees the call had started, and dead-letters
// the job as outcome_unknown with one alert instead of creating a second deal.
func TestKilledWorkerPOSTIsNotSentAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	w := newCrashWorld(t)
	body := encode(t, job("crash-post", http.MethodPost, "/api/v1/deals", `{"title":"Crash deal"}`))
	ev, lapses := w.killMidCall(ctx, body)

	again := w.redeliver(ctx, ev)
	time.Sleep(time.Until(lapses))
	f := w.start("after-crash")
	var batch events.SQSEventResponse
	if err := f.InvokeJSON(ctx, again, &batch); err != nil {
		t.Fatalf("second delivery = %v", err)
	}
	if len(batch.BatchItemFailures) != 0 {
		t.Errorf("batchItemFailures = %v, want none (dead-lettered and acknowledged)", batch.BatchItemFailures)
	}
	if got := w.deals(ctx); len(got) != 1 || got[0] != "Crash deal" {
		t.Errorf("deals at Pipedrive = %q, want exactly one", got)
	}
	if got := w.sim.Counters().APIByRoute["POST /api/v1/deals"]; got != 1 {
		t.Errorf("POST /api/v1/deals calls = %d, want 1", got)
	}
	dl := testenv.ReceiveAll(t, testenv.AWS(t), w.dlqURL, 1, 5*time.Second)
	if len(dl) != 1 || aws.ToString(dl[0].Body) != body || attr(dl[0], jobs.AttrReason) != worker.ReasonOutcomeUnknown {
		t.Fatalf("dead letters = %+v, want the job once with reason outcome_unknown", dl)
	}
	alerts := w.inbox.Wait(t, 1, 5*time.Second)
	if len(alerts) != 1 || alerts[0].Attributes["reason"] != worker.ReasonOutcomeUnknown {
		t.Errorf("alerts = %+v, want one outcome_unknown alert", alerts)
	}
	if more := w.inbox.Drain(t); len(more) != 0 {
		t.Errorf("more alerts = %+v, want one in all", more)
	}
}

// TestKilledWorkerRetrySafePOSTRunsAgain: the same crash for a POST marked retry_safe: the job
// is not marked before its call, so the next delivery simply runs it again.
func TestKilledWorkerRetrySafePOSTRunsAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	w := newCrashWorld(t)
	j := job("crash-safe", http.MethodPost, "/api/v1/deals", `{"title":"Safe deal"}`)
	j.RetrySafe = true
	ev, lapses := w.killMidCall(ctx, encode(t, j))

	again := w.redeliver(ctx, ev)
	time.Sleep(time.Until(lapses))
	f := w.start("after-crash")
	var batch events.SQSEventResponse
	if err := f.InvokeJSON(ctx, again, &batch); err != nil || len(batch.BatchItemFailures) != 0 {
		t.Fatalf("second delivery = %+v, %v; want it done", batch, err)
	}
	if got := w.deals(ctx); len(got) != 2 {
		t.Errorf("deals at Pipedrive = %q, want two (the job said a repeat is harmless)", got)
	}
	if dl := testenv.ReceiveAll(t, testenv.AWS(t), w.dlqURL, -1, 0); len(dl) != 0 {
		t.Errorf("dead letters = %d, want none", len(dl))
	}
}

// TestPlantedPlaintextTokenIsRefused: someone who can write the table plants an installation
// whose tokens are in clear. The deployed worker (REFUSE_PLAINTEXT_TOKENS from the template's
// default) refuses it: the job is dead-lettered with token_in_clear and an alert, and the
// planted token never reaches Pipedrive.
func TestPlantedPlaintextTokenIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	w := newCrashWorld(t)
	tok, err := w.sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
	// Written in clear, over the sealed installation, as a store without the key writes.
	planter := &tokenstore.Store{DB: w.store.DB, Table: w.store.Table}
	if _, err := planter.Install(ctx, tokenstore.Installation{ID: acme, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		APIDomain: tok.APIDomain, Scopes: strings.Split(tok.Scope, ","), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	body := encode(t, job("planted", http.MethodGet, "/api/v1/users/me", ""))
	if _, err := w.q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(w.queueURL), MessageBody: aws.String(body)}); err != nil {
		t.Fatal(err)
	}
	calls := w.sim.Counters().APIByStatus
	f := w.start("planted")
	var batch events.SQSEventResponse
	if err := f.InvokeJSON(ctx, w.receive(ctx), &batch); err != nil || len(batch.BatchItemFailures) != 0 {
		t.Fatalf("delivery = %+v, %v; want it dead-lettered and acknowledged", batch, err)
	}
	dl := testenv.ReceiveAll(t, testenv.AWS(t), w.dlqURL, 1, 5*time.Second)
	if len(dl) != 1 || attr(dl[0], jobs.AttrReason) != "token_in_clear" {
		t.Fatalf("dead letters = %+v, want the job with reason token_in_clear", dl)
	}
	if alerts := w.inbox.Wait(t, 1, 5*time.Second); len(alerts) != 1 || alerts[0].Attributes["reason"] != "token_in_clear" {
		t.Errorf("alerts = %+v, want one token_in_clear alert", alerts)
	}
	if got := w.sim.Counters().APIByStatus; !maps.Equal(got, calls) {
		t.Errorf("simulator answers = %v, were %v: the planted token must not be used", got, calls)
	}
}
