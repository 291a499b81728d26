package apicall

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	kitapp "github.com/pdkit/pipedrive-lambda-kit/internal/app"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/sqspoller"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// t0 is where every test clock starts: noon UTC, twelve hours before the daily budget resets.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// webhookCreds is the HTTP Basic pair of the simulator's default installation's webhooks, as
// the provisioned webhook key (testenv.WebhookKey) yields it; webhookPassword is a secret like
// the tokens.
var (
	webhookCreds    = webhook.InstallationCredentials([]byte(testenv.WebhookKey), installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID})
	webhookPassword = webhookCreds.Password
)

// acme is the simulator's default installation.
var acme = tokenstore.InstallationID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}

// The whole run's log output and every secret the tests saw: TestMain checks, after all tests,
// that no secret reached the log.
var (
	logSink = &testenv.Buffer{}
	secrets = &testenv.Secrets{}
)

func TestMain(m *testing.M) {
	secrets.Add("webhook password", webhookPassword)
	os.Exit(testenv.MainCheckingLogs(m, logSink, secrets))
}

// env is one test's world: its own table, queues, topic and secret in moto, its own simulator
// and clock, and a handler wired as main.go wires it.
type env struct {
	t       *testing.T
	clock   *pdsim.Clock
	sim     *pdsimtest.TestServer
	res     *infra.Resources
	store   *tokenstore.Store
	inbox   *testenv.AlertInbox
	sqs     *sqs.Client
	queue   *countingQueue // the handler's Queue
	aws     aws.Config
	h       *Handler
	log     *testenv.Buffer // this test's log only
	simCfg  pdsim.Config
	handled []tokenstore.InstallationID
	// ddbRequests counts the store's DynamoDB requests (the handler's and the test's own).
	ddbRequests *atomic.Int64
}

// option changes the simulator's or the handler's configuration before the test starts.
type option func(*pdsim.Config, *config)

func withSim(f func(*pdsim.Config)) option { return func(s *pdsim.Config, _ *config) { f(s) } }
func withConfig(f func(*config)) option    { return func(_ *pdsim.Config, c *config) { f(c) } }

// webhooks configures register_webhooks with the given events (the Basic credentials come
// from the secret).
func webhooks(events ...pdwork.WebhookEvent) option {
	return withConfig(func(c *config) {
		c.Webhooks = pdwork.WebhookConfig{URL: "https://app.example/pipedrive/webhooks", Events: events}
	})
}

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	clock := pdsim.NewClock(t0)
	simCfg := pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret, Now: clock.Now}
	// The configuration main.go reads, from the environment template.yaml gives the function
	// (JOBS_MAX_RECEIVES is the jobs queue's maxReceiveCount).
	fenv := res.FunctionEnv("ApiCallFunction")
	hc, err := configFromEnv(func(k string) string { return fenv[k] })
	if err != nil {
		t.Fatalf("configFromEnv(template environment) = %v", err)
	}
	hc.Engine.Now = clock.Now
	// The tests invoke the handler directly, as the local stack does (WorkerDirectInvoke=true);
	// TestDirectInvokeRefusedByDefault checks the template's default.
	hc.DirectInvoke = true
	// Webhooks are each test's own (the webhooks option): none unless asked for.
	hc.Webhooks = pdwork.WebhookConfig{}
	for _, o := range opts {
		o(&simCfg, &hc)
	}
	sim := pdsimtest.New(t, simCfg)
	ddbRequests := &atomic.Int64{}
	store := &tokenstore.Store{DB: testenv.SerialWrites(dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, countRequests(ddbRequests))
	})), Table: res.TableName, Now: clock.Now}
	e := &env{
		t: t, clock: clock, sim: sim, res: res, store: store, aws: cfg, simCfg: simCfg,
		inbox:       testenv.SubscribeAlerts(t, cfg, res.AlertsTopicARN),
		sqs:         sqs.NewFromConfig(cfg),
		log:         &testenv.Buffer{},
		ddbRequests: ddbRequests,
	}
	e.queue = &countingQueue{Queue: e.sqs}
	logger := slog.New(slog.NewJSONHandler(io.MultiWriter(logSink, e.log, testenv.TestLogWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
	creds := &clientcreds.Source{Client: secretsmanager.NewFromConfig(cfg), SecretID: res.SecretID, Logger: logger}
	publisher := &alerts.Publisher{SNS: sns.NewFromConfig(cfg), TopicARN: res.AlertsTopicARN, Source: "apicall", Marks: store, Now: clock.Now}
	api := &pdapi.Client{HTTP: sim.HTTP.Client()}
	e.h = newHandler(deps{
		Store: store,
		Refresher: &refresh.Refresher{
			OAuth:  &pdoauth.Client{BaseURL: sim.URL, Credentials: creds.OAuthCredentials, HTTP: sim.HTTP.Client(), Now: clock.Now},
			Store:  store,
			Alerts: publisher,
			Log:    logger,
			Owner:  "apicall-test",
			Now:    clock.Now,
		},
		Pipedrive:   api,
		WebhookKeys: &clientcreds.WebhookKeySource{Client: secretsmanager.NewFromConfig(cfg), SecretID: res.WebhookKeySecretID, Logger: logger},
		Queue:       e.queue,
		Alerts:      alerts.Notifier{Sender: publisher, Log: logger},
		Log:         logger,
	}, hc, kitapp.App{})
	// Every token the store held, old and refreshed, joins the secrets before the table goes.
	t.Cleanup(func() {
		for _, id := range e.handled {
			if in, err := store.Get(t.Context(), id); err == nil {
				secrets.Add("access token", in.AccessToken)
				secrets.Add("refresh token", in.RefreshToken)
			}
		}
	})
	return e
}

// install stores an installation for the simulator user uid with tokens the simulator issued
// now, as the callback would.
func (e *env) install(uid int64) tokenstore.Installation {
	e.t.Helper()
	tok, err := e.sim.IssueToken(uid)
	if err != nil {
		e.t.Fatalf("IssueToken(%d) = %v", uid, err)
	}
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
	var company int64
	for _, u := range e.sim.Users() {
		if u.ID == uid {
			company = u.CompanyID
		}
	}
	id := tokenstore.InstallationID{CompanyID: company, UserID: uid}
	in, err := e.store.Install(e.t.Context(), tokenstore.Installation{
		ID: id, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: tok.APIDomain,
		Scopes: strings.Split(tok.Scope, ","), ExpiresAt: e.clock.Now().Add(time.Duration(tok.ExpiresIn) * time.Second),
	})
	if err != nil {
		e.t.Fatalf("store.Install(%s) = %v", id, err)
	}
	e.handled = append(e.handled, id)
	return in
}

// job is an api_call job for acme.
func job(id, method, path, body string) jobs.Job {
	j := jobs.Job{ID: id, Kind: jobs.KindAPICall, CompanyID: acme.CompanyID, UserID: acme.UserID, Method: method, Path: path}
	if body != "" {
		j.Body = json.RawMessage(body)
	}
	return j
}

// encode is a job as a producer sends it.
func encode(t *testing.T, j jobs.Job) string {
	t.Helper()
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// send puts message bodies on the jobs queue.
func (e *env) send(bodies ...string) {
	e.t.Helper()
	for _, b := range bodies {
		if _, err := e.sqs.SendMessage(e.t.Context(), &sqs.SendMessageInput{
			QueueUrl: aws.String(e.res.JobsQueueURL), MessageBody: aws.String(b),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				"job_id": {DataType: aws.String("String"), StringValue: aws.String(jobID(b) + "-attr")},
			},
		}); err != nil {
			e.t.Fatalf("SendMessage = %v", err)
		}
	}
}

// jobID is what the id of a job body reads as, "" when it is not a job.
func jobID(body string) string {
	var j struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(body), &j)
	return j.ID
}

// receive takes up to n messages from queueURL within wait, leaving them on the queue
// (invisible for the queue's visibility timeout), with their receipt handles and attributes.
func (e *env) receive(queueURL string, n int, wait time.Duration) []sqstypes.Message {
	e.t.Helper()
	var got []sqstypes.Message
	deadline := time.Now().Add(wait)
	for len(got) < n {
		out, err := e.sqs.ReceiveMessage(e.t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(queueURL),
			MaxNumberOfMessages:         int32(min(10, n-len(got))),
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			e.t.Fatalf("ReceiveMessage = %v", err)
		}
		got = append(got, out.Messages...)
		if len(out.Messages) == 0 {
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return got
}

// ack deletes received messages from the jobs queue, as Lambda's poller does with the
// messages of a batch the function did not report as failed.
func (e *env) ack(msgs ...sqstypes.Message) {
	e.t.Helper()
	for _, m := range msgs {
		if _, err := e.sqs.DeleteMessage(e.t.Context(), &sqs.DeleteMessageInput{
			QueueUrl: aws.String(e.res.JobsQueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
			e.t.Fatalf("DeleteMessage = %v", err)
		}
	}
}

// sqsEvent builds the event Lambda's poller would pass for received messages from the jobs
// queue: the one the local stack's poller builds.
func (e *env) sqsEvent(msgs []sqstypes.Message) events.SQSEvent {
	return (&sqspoller.Poller{QueueARN: e.res.JobsQueueARN, Region: testenv.Region}).Event(msgs)
}

// handleSQS runs the handler on ev as the Lambda runtime does (JSON in) and returns the ids it
// reported as failed.
func (e *env) handleSQS(ev events.SQSEvent) []string {
	e.t.Helper()
	raw, err := json.Marshal(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := e.h.Handle(e.t.Context(), raw)
	if err != nil {
		e.t.Fatalf("Handle(SQS event) error = %v, want nil", err)
	}
	resp, ok := out.(events.SQSEventResponse)
	if !ok {
		e.t.Fatalf("Handle(SQS event) = %T, want events.SQSEventResponse", out)
	}
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

// deliver sends bodies through the jobs queue, receives them with real receipt handles and
// runs one batch. It returns the received messages (in receive order) and the failed ids.
func (e *env) deliver(bodies ...string) ([]sqstypes.Message, []string) {
	e.t.Helper()
	e.send(bodies...)
	msgs := e.receive(e.res.JobsQueueURL, len(bodies), 5*time.Second)
	if len(msgs) != len(bodies) {
		e.t.Fatalf("received %d messages, want %d", len(msgs), len(bodies))
	}
	return msgs, e.handleSQS(e.sqsEvent(msgs))
}

// direct invokes the handler with one job payload and returns the Result.
func (e *env) direct(payload string) worker.Result {
	e.t.Helper()
	out, err := e.h.Handle(e.t.Context(), json.RawMessage(payload))
	if err != nil {
		e.t.Fatalf("Handle(direct) error = %v", err)
	}
	res, ok := out.(worker.Result)
	if !ok {
		e.t.Fatalf("Handle(direct) = %T, want worker.Result", out)
	}
	return res
}

// deadLetters drains the dead-letter queue and returns its messages, identical copies counted
// once. A copy is the SDK's doing, not the worker's: moto sometimes drops the connection after
// answering a SendMessage 200, the SDK retries, and the queue holds the message twice (SQS is
// at least once; AWS does the same after a lost answer). That the worker itself sent each
// dead letter once is checked here instead: its successful sends to the dead-letter queue since
// the last drain must equal the distinct messages.
func (e *env) deadLetters() []sqstypes.Message {
	e.t.Helper()
	var distinct []sqstypes.Message
	seen := map[string]bool{}
	for _, m := range testenv.ReceiveAll(e.t, e.aws, e.res.DeadLetterQueueURL, -1, 0) {
		if k := sameMessage(m); !seen[k] {
			seen[k] = true
			distinct = append(distinct, m)
		}
	}
	if sent := e.queue.take(e.res.DeadLetterQueueURL); sent != len(distinct) {
		e.t.Errorf("worker sent %d messages to the dead-letter queue, %d distinct arrived", sent, len(distinct))
	}
	return distinct
}

// sameMessage is what a retried SendMessage repeats: the body and the message attributes.
func sameMessage(m sqstypes.Message) string {
	attrs := map[string]string{}
	for k, a := range m.MessageAttributes {
		attrs[k] = aws.ToString(a.DataType) + ":" + aws.ToString(a.StringValue)
	}
	b, _ := json.Marshal(struct {
		Body  string
		Attrs map[string]string
	}{aws.ToString(m.Body), attrs})
	return string(b)
}

// countRequests counts the requests a client sends.
func countRequests(n *atomic.Int64) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("count", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			n.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	}
}

// countingQueue is the handler's Queue: SQS, with the worker's successful SendMessage calls
// counted by queue URL.
type countingQueue struct {
	worker.Queue
	mu   sync.Mutex
	sent map[string]int
}

func (q *countingQueue) SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	out, err := q.Queue.SendMessage(ctx, in, optFns...)
	if err == nil {
		q.mu.Lock()
		if q.sent == nil {
			q.sent = map[string]int{}
		}
		q.sent[aws.ToString(in.QueueUrl)]++
		q.mu.Unlock()
	}
	return out, err
}

// take returns the sends to queueURL since the last take.
func (q *countingQueue) take(queueURL string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.sent[queueURL]
	delete(q.sent, queueURL)
	return n
}

// alertReasons drains the alerts inbox and returns the reasons, sorted; no alert may hold a secret.
func (e *env) alertReasons() []string {
	e.t.Helper()
	var got []string
	for _, a := range e.inbox.Drain(e.t) {
		got = append(got, a.Attributes["reason"])
		for _, leak := range secrets.FoundIn(a.Message + a.Subject) {
			e.t.Errorf("alert %q contains %s", a.Subject, leak)
		}
	}
	slices.Sort(got)
	return got
}

// decision is one job-decision log event.
type decision struct {
	JobID        string `json:"job_id"`
	Kind         string `json:"kind"`
	CompanyID    int64  `json:"company_id"`
	UserID       int64  `json:"user_id"`
	Action       string `json:"action"`
	Reason       string `json:"reason"`
	Status       int    `json:"status"`
	RetryAfterS  int64  `json:"retry_after_s"`
	EntityID     string `json:"entity_id"`
	EventAction  string `json:"event_action"`
	CatchUp      bool   `json:"catch_up"`
	MessageID    string `json:"message_id"`
	ReceiveCount int    `json:"receive_count"`
}

// decisions returns this test's job-decision events, in order.
func (e *env) decisions() []decision {
	e.t.Helper()
	var out []decision
	for line := range strings.Lines(e.log.String()) {
		var m struct {
			Msg string `json:"msg"`
			decision
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			e.t.Fatalf("log line is not JSON: %v", err)
		}
		if strings.HasPrefix(m.Msg, "job ") {
			out = append(out, m.decision)
		}
	}
	return out
}

// decisionFor returns the last decision logged for job id.
func (e *env) decisionFor(id string) decision {
	e.t.Helper()
	var found *decision
	for _, d := range e.decisions() {
		if d.JobID == id {
			found = &d
		}
	}
	if found == nil {
		e.t.Fatalf("no decision logged for job %s", id)
	}
	return *found
}

// apiCalls is what the simulator answered on /api/, by status.
func (e *env) apiCalls() map[int]int {
	return e.sim.Counters().APIByStatus
}

// refreshes counts refresh_token grants at the simulator.
func (e *env) refreshes() int {
	return e.sim.Counters().TokenByGrant["refresh_token"]
}

// attr is a message attribute's string value.
func attr(m sqstypes.Message, k string) string {
	return aws.ToString(m.MessageAttributes[k].StringValue)
}

// wantDeadLetter checks a dead-lettered message: the original body, the reason and the ids.
func wantDeadLetter(t *testing.T, m sqstypes.Message, body, reason string, status int) {
	t.Helper()
	if got := aws.ToString(m.Body); got != body {
		t.Errorf("dead letter body = %q, want the original %q", got, body)
	}
	if got := attr(m, "reason"); got != reason {
		t.Errorf("dead letter reason = %q, want %q", got, reason)
	}
	wantStatus := ""
	if status != 0 {
		wantStatus = strconv.Itoa(status)
	}
	if got := attr(m, "status"); got != wantStatus {
		t.Errorf("dead letter status = %q, want %q", got, wantStatus)
	}
	text := aws.ToString(m.Body)
	for k := range m.MessageAttributes {
		text += " " + attr(m, k)
	}
	for _, leak := range secrets.FoundIn(text) {
		t.Errorf("dead letter contains %s", leak)
	}
}
