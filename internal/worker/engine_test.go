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

	"github.com/pdkit/pipedrive-lambda-kit/internal/fakeclock"
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
	apiCall := `{"id":"a","kind":"api_call","company_id":7,"user_id":1,"method":"GET","path":"/api/v2/deals"}`
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

// fastQueue is SQS as the engine sees it, with the jobs queue's delays played by the test's
// clock: each copy the engine re-sends is recorded (its delay and attributes) and sent with
// no delay, so the test receives it at once. With fail set, sends to the jobs queue fail.
type fastQueue struct {
	worker.Queue
	jobsQueueURL string
	mu           sync.Mutex
	delays       []int32
	fail         bool
}

func (q *fastQueue) SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if aws.ToString(in.QueueUrl) != q.jobsQueueURL {
		return q.Queue.SendMessage(ctx, in, optFns...)
	}
	q.mu.Lock()
	fail := q.fail
	if !fail {
		q.delays = append(q.delays, in.DelaySeconds)
	}
	q.mu.Unlock()
	if fail {
		return nil, errors.New("fastQueue: send refused")
	}
	now := *in
	now.DelaySeconds = 0
	return q.Queue.SendMessage(ctx, &now, optFns...)
}

// sent returns the delays of the copies sent since the last call.
func (q *fastQueue) sent() []int32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	d := q.delays
	q.delays = nil
	return d
}

func (w *world) fastQueue() *fastQueue {
	q := &fastQueue{Queue: w.sqs, jobsQueueURL: w.res.JobsQueueURL}
	w.engine.Queue = q
	return q
}

// withClock makes the engine and its claims run on a clock the test moves, and returns it and
// the claims' store.
func (w *world) withClock() (*fakeclock.Clock, *tokenstore.Store) {
	c := fakeclock.New(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	store := &tokenstore.Store{DB: testenv.DynamoDB(w.t), Table: w.res.TableName, Now: c.Now}
	w.engine.Claims, w.engine.Config.Now = store, c.Now
	return c, store
}

// receiveJob takes the next message of the jobs queue, with its attributes, within 5 s.
func (w *world) receiveJob() []sqstypes.Message {
	w.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		out, err := w.sqs.ReceiveMessage(w.t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.res.JobsQueueURL),
			MaxNumberOfMessages: 1, MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			w.t.Fatal(err)
		}
		if len(out.Messages) > 0 {
			return out.Messages
		}
	}
	w.t.Fatal("no message on the jobs queue within 5 s")
	return nil
}

// loggedDecision is one job-decision event of the log.
type loggedDecision struct {
	Msg, Action, Reason string
	ReceiveCount        int   `json:"receive_count"`
	EarlierAttempts     int   `json:"earlier_attempts"`
	Deferrals           int   `json:"deferrals"`
	RetryAfterS         int64 `json:"retry_after_s"`
}

// lastDecision is the latest job-decision event of the log.
func (w *world) lastDecision() loggedDecision {
	w.t.Helper()
	w.logMu.Lock()
	defer w.logMu.Unlock()
	var last loggedDecision
	for line := range strings.Lines(w.log.String()) {
		var d loggedDecision
		if json.Unmarshal([]byte(line), &d) == nil && strings.HasPrefix(d.Msg, "job ") {
			last = d
		}
	}
	return last
}

// intAttr is a message attribute as a number, 0 when absent.
func intAttr(m sqstypes.Message, k string) int {
	n, _ := strconv.Atoi(aws.ToString(m.MessageAttributes[k].StringValue))
	return n
}

// deferRounds runs the job of msgs (a copy already deferred before times) rounds times through
// the engine (run runs one event), each time expecting a deferral for reason: no batch
// failure, one copy re-sent with the job's attempts unchanged (earlier_attempts stays earlier)
// and one more deferral, whose delay is minDelay at least. It returns the last copy, as
// received.
func (w *world) deferRounds(q *fastQueue, msgs []sqstypes.Message, before, rounds int, reason string, earlier int, minDelay int32, run func(events.SQSEvent) []string) []sqstypes.Message {
	w.t.Helper()
	for i := before + 1; i <= before+rounds; i++ {
		if failed := run(w.event(msgs)); len(failed) != 0 {
			w.t.Fatalf("round %d: batch failures = %v, want none (deferred, acknowledged)", i, failed)
		}
		if d := w.lastDecision(); d.Action != string(worker.OutcomeDeferred) || d.Reason != reason {
			w.t.Fatalf("round %d: decision = %s/%s, want deferred/%s", i, d.Action, d.Reason, reason)
		}
		delays := q.sent()
		if len(delays) != 1 || delays[0] < minDelay {
			w.t.Fatalf("round %d: copies sent with delays %v, want one of at least %d s", i, delays, minDelay)
		}
		msgs = w.receiveJob()
		if got := msgs[0].Attributes["ApproximateReceiveCount"]; got != "1" {
			w.t.Errorf("round %d: copy's receive count = %s, want 1 (a new message)", i, got)
		}
		if got := intAttr(msgs[0], jobs.AttrEarlierAttempts); got != earlier {
			w.t.Errorf("round %d: copy's earlier_attempts = %d, want %d (unchanged by the deferral)", i, got, earlier)
		}
		if got := intAttr(msgs[0], jobs.AttrDeferrals); got != i {
			w.t.Errorf("round %d: copy's deferrals = %d, want %d", i, got, i)
		}
	}
	return msgs
}

// TestClaimHeldElsewhereDefersWithoutSpendingAttempts: a job whose claim another instance holds
// (here a crashed one) is deferred until the claim's lease ends, more times than the queue's
// maxReceiveCount, without an attempt; once the lease has ended the job runs, as its first
// attempt.
func TestClaimHeldElsewhereDefersWithoutSpendingAttempts(t *testing.T) {
	w := newWorld(t)
	q := w.fastQueue()
	clock, store := w.withClock()
	var calls atomic.Int32
	w.runner.verdict = func(jobs.Job) worker.Verdict {
		if calls.Add(1) == 1 {
			return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: "upstream_down"}
		}
		return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: "paused"}
	}
	body := pauseJob("held", 5)
	if _, err := store.ClaimWork(t.Context(), worker.ClaimKey(w.engine.Name, jobs.Job{ID: "held", CompanyID: 5, UserID: 1}),
		"crashed-instance", worker.DefaultClaimLease, worker.DefaultClaimTTL); err != nil {
		t.Fatal(err)
	}
	if _, failed := w.deliver(body); len(failed) != 0 {
		t.Fatalf("first delivery failures = %v, want none (deferred)", failed)
	}
	// The first delivery was a deferral too; the rounds bring the copies back before the lease
	// ends (the test's clock stands still), as a shorter wait would.
	_ = q.sent()
	msgs := w.receiveJob()
	rounds := w.res.MaxReceiveCount + 1
	msgs = w.deferRounds(q, msgs, 1, rounds, worker.ReasonInProgress, 0, int32(worker.DefaultClaimLease/time.Second), w.run)
	if got := w.runner.runs.Load(); got != 0 {
		t.Fatalf("runner ran %d times while the claim was held, want 0", got)
	}

	clock.Advance(worker.DefaultClaimLease) // the crashed instance's lease ends: the claim can be taken over
	if failed := w.run(w.event(msgs)); !slices.Equal(failed, []string{*msgs[0].MessageId}) {
		t.Fatalf("failures of the run after the lease = %v, want the message (the runner retried)", failed)
	}
	// The first attempt's retry: the default backoff of attempt 1, not a dead letter.
	if d := w.lastDecision(); d.Action != string(worker.OutcomeRetry) || d.RetryAfterS != worker.CeilSeconds(worker.DefaultBackoff(1)) || d.EarlierAttempts != 0 {
		t.Errorf("decision after the lease = %+v, want retry after %v (attempt 1)", d, worker.DefaultBackoff(1))
	}
	ev := w.event(msgs)
	ev.Records[0].Attributes["ApproximateReceiveCount"] = "2"
	if failed := w.run(ev); len(failed) != 0 {
		t.Errorf("failures of the next attempt = %v, want none", failed)
	}
	if got := w.runner.runs.Load(); got != 2 {
		t.Errorf("runner ran %d times, want 2 (a retry, then success)", got)
	}
	if dead := w.deadLetters(); len(dead) != 0 {
		t.Errorf("dead letters = %+v, want none", dead)
	}
}

// TestShortDeadlineDefersWithoutSpendingAttempts: a job met by invocations too close to their
// deadline is deferred each time without an attempt; its attempts before (two failed
// receives) are carried by every copy, neither spent nor forgotten, and count when it runs.
func TestShortDeadlineDefersWithoutSpendingAttempts(t *testing.T) {
	w := newWorld(t)
	q := w.fastQueue()
	w.runner.verdict = func(jobs.Job) worker.Verdict {
		return worker.Verdict{Outcome: worker.OutcomeRetry, Reason: "upstream_down"}
	}
	short := func(ev events.SQSEvent) []string {
		ctx, cancel := context.WithTimeout(t.Context(), worker.DefaultDeadlineReserve/2)
		defer cancel()
		var ids []string
		for _, f := range w.engine.RunBatch(ctx, ev).BatchItemFailures {
			ids = append(ids, f.ItemIdentifier)
		}
		return ids
	}
	body := pauseJob("late", 6)
	if _, err := w.sqs.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(w.res.JobsQueueURL), MessageBody: aws.String(body)}); err != nil {
		t.Fatal(err)
	}
	msgs := w.receiveJob()
	// Its third receive: two attempts failed before.
	ev := w.event(msgs)
	ev.Records[0].Attributes["ApproximateReceiveCount"] = "3"
	if failed := short(ev); len(failed) != 0 {
		t.Fatalf("first short invocation failures = %v, want none (deferred)", failed)
	}
	if delays := q.sent(); len(delays) != 1 || delays[0] < 1 {
		t.Fatalf("copies = %v, want one delayed at least 1 s", delays)
	}
	msgs = w.receiveJob()
	if got := intAttr(msgs[0], jobs.AttrEarlierAttempts); got != 2 {
		t.Fatalf("copy's earlier_attempts = %d, want 2", got)
	}
	msgs = w.deferRounds(q, msgs, 1, w.res.MaxReceiveCount, worker.ReasonDeadline, 2, 1, short)
	if got := w.runner.runs.Load(); got != 0 {
		t.Fatalf("runner ran %d times in short invocations, want 0", got)
	}
	// An invocation with time: the job runs, as its third attempt.
	if failed := w.run(w.event(msgs)); !slices.Equal(failed, []string{*msgs[0].MessageId}) {
		t.Fatalf("failures with time = %v, want the message (the runner retried)", failed)
	}
	if d := w.lastDecision(); d.Action != string(worker.OutcomeRetry) || d.EarlierAttempts != 2 || d.RetryAfterS != worker.CeilSeconds(worker.DefaultBackoff(3)) {
		t.Errorf("decision with time = %+v, want retry after %v (attempt 3)", d, worker.DefaultBackoff(3))
	}
	if got := w.runner.runs.Load(); got != 1 {
		t.Errorf("runner ran %d times, want 1", got)
	}
	// Its last allowed attempt is the queue's maxReceiveCount counted over all its messages.
	ev = w.event(msgs)
	ev.Records[0].Attributes["ApproximateReceiveCount"] = strconv.Itoa(w.res.MaxReceiveCount - 2)
	if failed := w.run(ev); len(failed) != 0 {
		t.Errorf("failures at attempt %d = %v, want none (dead-lettered)", w.res.MaxReceiveCount, failed)
	}
	dead := w.deadLetters()
	if len(dead) != 1 || dead[0].Reason != worker.ReasonRetriesExhausted || dead[0].EarlierAttempts != 2 || dead[0].Deferrals != w.res.MaxReceiveCount+1 {
		t.Errorf("dead letters = %+v, want retries_exhausted with earlier_attempts 2 and deferrals %d", dead, w.res.MaxReceiveCount+1)
	}
}

// TestFailedResendLeavesTheMessageForRedelivery: when the deferral's copy cannot be sent, the
// original is not acknowledged: it is a batch item failure, hidden for the deferral's delay,
// and SQS delivers it again.
func TestFailedResendLeavesTheMessageForRedelivery(t *testing.T) {
	w := newWorld(t)
	q := w.fastQueue()
	q.fail = true
	clock, store := w.withClock()
	if _, err := store.ClaimWork(t.Context(), worker.ClaimKey(w.engine.Name, jobs.Job{ID: "unsent", CompanyID: 8, UserID: 1}),
		"other-instance", 2*time.Second, worker.DefaultClaimTTL); err != nil {
		t.Fatal(err)
	}
	msgs, failed := w.deliver(pauseJob("unsent", 8))
	if !slices.Equal(failed, []string{*msgs[0].MessageId}) {
		t.Fatalf("batch failures = %v, want the message (left to SQS)", failed)
	}
	if d := w.lastDecision(); d.Action != string(worker.OutcomeRetry) || d.Reason != worker.ReasonRequeueFailed || d.RetryAfterS != 2 {
		t.Errorf("decision = %+v, want retry (requeue_failed) after the claim's 2 s", d)
	}
	back := w.receiveJob()
	if *back[0].MessageId != *msgs[0].MessageId || back[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("received %s (receive %s), want the original message again at receive 2", *back[0].MessageId, back[0].Attributes["ApproximateReceiveCount"])
	}
	q.fail = false
	clock.Advance(2 * time.Second)
	if failed := w.run(w.event(back)); len(failed) != 0 {
		t.Errorf("redelivery failures = %v, want none", failed)
	}
	if got := w.runner.runs.Load(); got != 1 {
		t.Errorf("runner ran %d times, want 1", got)
	}
}

// TestDeferralCapDeadLetters: a job deferred for an obstacle that never clears (a claim renewed
// by its holder every time) ends in the dead-letter queue with its reason after MaxDeferrals
// deferrals, with one alert; the runner never ran.
func TestDeferralCapDeadLetters(t *testing.T) {
	w := newWorld(t)
	q := w.fastQueue()
	_, store := w.withClock()
	w.engine.Alerts.Log = w.engine.Log
	w.engine.Config.MaxDeferrals = 3
	if _, err := store.ClaimWork(t.Context(), worker.ClaimKey(w.engine.Name, jobs.Job{ID: "stuck", CompanyID: 9, UserID: 1}),
		"stuck-instance", worker.DefaultClaimLease, worker.DefaultClaimTTL); err != nil {
		t.Fatal(err)
	}
	if _, failed := w.deliver(pauseJob("stuck", 9)); len(failed) != 0 {
		t.Fatalf("first delivery failures = %v, want none (deferred)", failed)
	}
	_ = q.sent()
	msgs := w.deferRounds(q, w.receiveJob(), 1, 2, worker.ReasonInProgress, 0, 1, w.run)
	if failed := w.run(w.event(msgs)); len(failed) != 0 {
		t.Errorf("failures past the cap = %v, want none (dead-lettered)", failed)
	}
	if delays := q.sent(); len(delays) != 0 {
		t.Errorf("copies past the cap = %v, want none", delays)
	}
	dead := w.deadLetters()
	want := jobs.DeadLetter{Reason: worker.ReasonDeferralsExhausted, Error: "deferred 3 times without an attempt, last: in_progress",
		CompanyID: 9, UserID: 1, JobID: "stuck", Kind: kindPause, ReceiveCount: 1, MessageID: *msgs[0].MessageId, Deferrals: 3}
	if len(dead) != 1 || dead[0] != want {
		t.Errorf("dead letters = %+v, want %+v", dead, want)
	}
	if got := w.runner.runs.Load(); got != 0 {
		t.Errorf("runner ran %d times, want 0", got)
	}
	w.logMu.Lock()
	alertsLogged := strings.Count(w.log.String(), `"action":"alert","reason":"`+worker.ReasonDeferralsExhausted+`"`)
	w.logMu.Unlock()
	if alertsLogged != 1 {
		t.Errorf("deferrals_exhausted alerts = %d, want 1", alertsLogged)
	}
}
