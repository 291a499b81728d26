package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/sqspoller"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// kindPause is a kind of work the engine has never heard of and jobs.Kinds does not list: it
// plugs in as a Runner, nothing else changes.
const kindPause = "pause_company"

// pauseRunner is a tiny runner: it answers what verdict says and counts its runs.
type pauseRunner struct {
	runs    atomic.Int32
	verdict func(j jobs.Job) worker.Verdict
	// hold, when set, keeps Run busy until it is closed.
	hold chan struct{}
}

var (
	_ worker.Runner    = (*pauseRunner)(nil)
	_ worker.Checker   = (*pauseRunner)(nil)
	_ worker.Exclusive = (*pauseRunner)(nil)
)

func (r *pauseRunner) Run(ctx context.Context, j jobs.Job) worker.Verdict {
	r.runs.Add(1)
	if r.hold != nil {
		<-r.hold
	}
	if r.verdict == nil {
		return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: "paused", Body: json.RawMessage(`{"paused":` + strconv.FormatInt(j.CompanyID, 10) + `}`)}
	}
	return r.verdict(j)
}

// Check: a pause names no API path.
func (r *pauseRunner) Check(j jobs.Job) []string {
	if j.Path != "" {
		return []string{"pause_company takes no path"}
	}
	return nil
}

// ExclusiveKey: one pause per company at a time.
func (r *pauseRunner) ExclusiveKey(j jobs.Job) string {
	return kindPause + "#" + strconv.FormatInt(j.CompanyID, 10)
}

// world is one test's engine over moto: its own table (claims) and queues.
type world struct {
	t      *testing.T
	res    *infra.Resources
	sqs    *sqs.Client
	engine *worker.Engine
	runner *pauseRunner
	log    *bytes.Buffer
	logMu  *sync.Mutex
}

func newWorld(t *testing.T) *world {
	t.Helper()
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	w := &world{t: t, res: res, sqs: sqs.NewFromConfig(cfg), runner: &pauseRunner{}, log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	w.engine = &worker.Engine{
		Name:    "worker-test",
		Runners: map[string]worker.Runner{kindPause: w.runner},
		Claims:  &tokenstore.Store{DB: testenv.DynamoDB(t), Table: res.TableName},
		Queue:   w.sqs,
		Log:     slog.New(slog.NewJSONHandler(lockedWriter{w.logMu, w.log}, nil)),
		Config: worker.Config{
			JobsQueueURL: res.JobsQueueURL, DeadLetterQueueURL: res.DeadLetterQueueURL,
			// The jobs queue's maxReceiveCount, as the template defines it.
			MaxReceives: res.MaxReceiveCount,
		},
	}
	return w
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func pauseJob(id string, company int64) string {
	b, _ := json.Marshal(jobs.Job{ID: id, Kind: kindPause, CompanyID: company, UserID: 1})
	return string(b)
}

// deliver sends bodies through the jobs queue and runs them as one batch; it returns the
// received messages and the ids reported as failed.
func (w *world) deliver(bodies ...string) ([]sqstypes.Message, []string) {
	w.t.Helper()
	for _, b := range bodies {
		if _, err := w.sqs.SendMessage(w.t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(w.res.JobsQueueURL), MessageBody: aws.String(b)}); err != nil {
			w.t.Fatal(err)
		}
	}
	var msgs []sqstypes.Message
	for deadline := time.Now().Add(5 * time.Second); len(msgs) < len(bodies) && time.Now().Before(deadline); {
		out, err := w.sqs.ReceiveMessage(w.t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.res.JobsQueueURL),
			MaxNumberOfMessages: 10, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			w.t.Fatal(err)
		}
		msgs = append(msgs, out.Messages...)
	}
	if len(msgs) != len(bodies) {
		w.t.Fatalf("received %d messages, want %d", len(msgs), len(bodies))
	}
	return msgs, w.run(w.event(msgs))
}

func (w *world) event(msgs []sqstypes.Message) events.SQSEvent {
	return (&sqspoller.Poller{QueueARN: w.res.JobsQueueARN, Region: testenv.Region}).Event(msgs)
}

func (w *world) run(ev events.SQSEvent) []string {
	var ids []string
	for _, f := range w.engine.RunBatch(w.t.Context(), ev).BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

func (w *world) deadLetters() []jobs.DeadLetter {
	var out []jobs.DeadLetter
	for _, m := range testenv.ReceiveAll(w.t, testenv.AWS(w.t), w.res.DeadLetterQueueURL, -1, 0) {
		out = append(out, jobs.DeadLetterOf(m.MessageAttributes))
	}
	return out
}

// actions are the logged decisions, "action/reason", in order.
func (w *world) actions() []string {
	w.logMu.Lock()
	defer w.logMu.Unlock()
	var out []string
	for line := range strings.Lines(w.log.String()) {
		var m struct{ Msg, Action, Reason string }
		if json.Unmarshal([]byte(line), &m) == nil && strings.HasPrefix(m.Msg, "job ") {
			out = append(out, m.Action+"/"+m.Reason)
		}
	}
	return out
}

// TestNewKindPlugsInAsARunner: a kind neither the engine nor jobs.Kinds knows runs once per
// job ID through its Runner, its Check decides validity, and a kind without a Runner is an
// invalid job.
func TestNewKindPlugsInAsARunner(t *testing.T) {
	w := newWorld(t)
	body := pauseJob("pause:7", 7)
	if _, failed := w.deliver(body, body); len(failed) > 1 {
		t.Fatalf("batch failures = %v, want at most the delivery that found the job in progress", failed)
	}
	res, err := w.engine.RunJob(t.Context(), []byte(body))
	if err != nil || res.Outcome != worker.OutcomeDuplicate || res.Kind != kindPause {
		t.Errorf("RunJob(same job) = %+v, %v; want a duplicate", res, err)
	}
	if got := w.runner.runs.Load(); got != 1 {
		t.Errorf("runner ran %d times, want 1", got)
	}

	res, err = w.engine.RunJob(t.Context(), []byte(pauseJob("pause:8", 8)))
	if err != nil || res.Outcome != worker.OutcomeSucceeded || res.Reason != "paused" || string(res.Body) != `{"paused":8}` {
		t.Errorf("RunJob(new job) = %+v, %v; want the runner's verdict and body", res, err)
	}

	_, err = w.engine.RunJob(t.Context(), []byte(`{"id":"p","kind":"pause_company","company_id":7,"user_id":1,"path":"/api/v1/x"}`))
	var ije *worker.InvalidJobError
	if !errors.As(err, &ije) || !errors.Is(err, jobs.ErrInvalidJob) || !strings.Contains(err.Error(), "pause_company takes no path") ||
		!strings.HasPrefix(err.Error(), "worker-test: jobs: invalid job") {
		t.Errorf("RunJob(fails Check) = %v, want an *InvalidJobError with the runner's problem", err)
	}
	apiCall := `{"id":"a","kind":"api_call","company_id":7,"user_id":1,"method":"GET","path":"/api/v1/deals"}`
	if _, failed := w.deliver(apiCall); len(failed) != 0 {
		t.Errorf("batch failures for a kind without a runner = %v, want none (dead-lettered)", failed)
	}
	dead := w.deadLetters()
	if len(dead) != 1 || dead[0].Reason != worker.ReasonInvalidJob || !strings.Contains(dead[0].Error, `unknown kind "api_call"`) || dead[0].JobID != "a" {
		t.Errorf("dead letters = %+v, want the api_call job as invalid_job (unknown kind)", dead)
	}
}

// TestRetriesThenDeadLettersAtTheLastReceive: a runner's retry is a batch item failure until
// the queue's maxReceiveCount, where the engine dead-letters it with the last reason.
func TestRetriesThenDeadLettersAtTheLastReceive(t *testing.T) {
	w := newWorld(t)
	w.runner.verdict = func(jobs.Job) worker.Verdict {
		return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: "upstream_down", Status: 503, Message: "try later"}
	}
	msgs, failed := w.deliver(pauseJob("flaky", 3))
	if !slices.Equal(failed, []string{*msgs[0].MessageId}) {
		t.Fatalf("batch failures = %v, want the message", failed)
	}
	ev := w.event(msgs)
	ev.Records[0].Attributes["ApproximateReceiveCount"] = strconv.Itoa(w.res.MaxReceiveCount)
	if failed := w.run(ev); len(failed) != 0 {
		t.Errorf("failures at the last receive = %v, want none (dead-lettered)", failed)
	}
	dead := w.deadLetters()
	want := jobs.DeadLetter{Reason: worker.ReasonRetriesExhausted, Error: "last attempt: upstream_down: try later", Status: 503,
		CompanyID: 3, UserID: 1, JobID: "flaky", Kind: kindPause, ReceiveCount: w.res.MaxReceiveCount, MessageID: *msgs[0].MessageId}
	if len(dead) != 1 || dead[0] != want {
		t.Errorf("dead letters = %+v, want %+v", dead, want)
	}
	if got, want := w.actions(), []string{"retry/upstream_down", "dead_lettered/retries_exhausted"}; !slices.Equal(got, want) {
		t.Errorf("decisions = %v, want %v", got, want)
	}
}

// TestPanicIsRetriedAndReleasesTheClaim: a panicking runner costs a retry, not the batch, and
// the next delivery can run the job.
func TestPanicIsRetriedAndReleasesTheClaim(t *testing.T) {
	w := newWorld(t)
	var calls atomic.Int32
	w.runner.verdict = func(jobs.Job) worker.Verdict {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: "paused"}
	}
	body := pauseJob("panics", 4)
	if res, err := w.engine.RunJob(t.Context(), []byte(body)); err != nil || res.Outcome != worker.OutcomeRetry || res.Reason != worker.ReasonPanic || res.RetryAfter != worker.DefaultBackoff(1) {
		t.Errorf("RunJob(panicking runner) = %+v, %v; want retry (panic) after the default backoff", res, err)
	}
	if res, err := w.engine.RunJob(t.Context(), []byte(body)); err != nil || res.Outcome != worker.OutcomeSucceeded {
		t.Errorf("RunJob(again) = %+v, %v; want succeeded (claim released)", res, err)
	}
}

// TestExclusiveJobsRunOneAtATime: two jobs with different IDs and one exclusive key do not run
// together; the second is deferred until the first's lease ends.
func TestExclusiveJobsRunOneAtATime(t *testing.T) {
	w := newWorld(t)
	w.runner.hold = make(chan struct{})
	first := make(chan worker.Result)
	go func() {
		res, _ := w.engine.RunJob(context.WithoutCancel(t.Context()), []byte(pauseJob("pause-a", 9)))
		first <- res
	}()
	for w.runner.runs.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	res, err := w.engine.RunJob(t.Context(), []byte(pauseJob("pause-b", 9)))
	close(w.runner.hold)
	// Deferred, not retried: the second job was not attempted (the lock is another's).
	if err != nil || res.Outcome != worker.OutcomeDeferred || res.Reason != worker.ReasonInProgress || res.RetryAfter < time.Second {
		t.Errorf("RunJob(second job, same key) = %+v, %v; want deferred (in_progress)", res, err)
	}
	if res := <-first; res.Outcome != worker.OutcomeSucceeded {
		t.Errorf("first job = %+v, want succeeded", res)
	}
	if res, err := w.engine.RunJob(t.Context(), []byte(pauseJob("pause-b", 9))); err != nil || res.Outcome != worker.OutcomeSucceeded {
		t.Errorf("RunJob(second job, afterwards) = %+v, %v; want succeeded (lock released)", res, err)
	}
}

func TestResultJSON(t *testing.T) {
	b, err := json.Marshal(worker.Result{JobID: "j", Kind: "k", Outcome: worker.OutcomeRetry, Reason: "r", RetryAfter: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"job_id":"j","kind":"k","outcome":"retry","reason":"r","retry_after_seconds":2}`; string(b) != want {
		t.Errorf("Marshal(Result) = %s, want %s", b, want)
	}
}
