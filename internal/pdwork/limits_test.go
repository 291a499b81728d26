package pdwork_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/fakeclock"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// lt0 is where the limits tests' clock starts: noon in the simulator's UTC day.
var lt0 = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

// memQueue is the jobs queue and its dead-letter queue as SQS behaves for the engine, in
// memory and on the test's clock, so hours of retries and pauses run in milliseconds: a
// message is delivered when visible, its receive count grows per delivery, an
// acknowledged one is deleted, ChangeMessageVisibility hides it, SendMessage adds one (with
// its delay), and SQS's own redrive moves one past maxReceives to the dead-letter queue.
//
// The tests run it on a fakeclock.Clock, which next moves; the burst benchmark on its scaled
// clock, where receive takes what is visible now and maxReceives is 0 (no redrive).
type memQueue struct {
	mu          sync.Mutex
	clock       interface{ Now() time.Time }
	maxReceives int // 0: no redrive
	msgs        map[string]*memMsg
	dead        []string // bodies
	seq         int
}

type memMsg struct {
	id, body, receipt string
	visibleAt         time.Time
	receives          int
}

const (
	jobsURL = "mem://jobs"
	dlqURL  = "mem://dlq"
)

var _ worker.Queue = (*memQueue)(nil)

func (q *memQueue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if aws.ToString(in.QueueUrl) == dlqURL {
		q.dead = append(q.dead, aws.ToString(in.MessageBody))
		return &sqs.SendMessageOutput{}, nil
	}
	q.seq++
	id := "m" + strconv.Itoa(q.seq)
	q.msgs[id] = &memMsg{id: id, body: aws.ToString(in.MessageBody), visibleAt: q.clock.Now().Add(time.Duration(in.DelaySeconds) * time.Second)}
	return &sqs.SendMessageOutput{MessageId: aws.String(id)}, nil
}

func (q *memQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		if m.receipt == aws.ToString(in.ReceiptHandle) {
			m.visibleAt = q.clock.Now().Add(time.Duration(in.VisibilityTimeout) * time.Second)
		}
	}
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// next moves the (fake) clock to the earliest visible message and receives up to n visible
// ones; false when the queue is empty.
func (q *memQueue) next(n int) (events.SQSEvent, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.msgs) == 0 {
		return events.SQSEvent{}, false
	}
	due := q.byVisibilityLocked()
	if fc, ok := q.clock.(*fakeclock.Clock); ok && due[0].visibleAt.After(fc.Now()) {
		fc.Set(due[0].visibleAt)
	}
	return q.takeLocked(due, n), true
}

// nextBefore is next for messages visible before until only: false when none is.
func (q *memQueue) nextBefore(n int, until time.Time) (events.SQSEvent, bool) {
	q.mu.Lock()
	due := q.byVisibilityLocked()
	q.mu.Unlock()
	if len(due) == 0 || !due[0].visibleAt.Before(until) {
		return events.SQSEvent{}, false
	}
	return q.next(n)
}

// receive takes up to n messages visible now, without moving any clock; done is true when
// the queue is empty.
func (q *memQueue) receive(n int) (ev events.SQSEvent, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.msgs) == 0 {
		return ev, true
	}
	return q.takeLocked(q.byVisibilityLocked(), n), false
}

// byVisibilityLocked lists the messages, the earliest visible first.
func (q *memQueue) byVisibilityLocked() []*memMsg {
	var due []*memMsg
	for _, m := range q.msgs {
		due = append(due, m)
	}
	slices.SortFunc(due, func(a, b *memMsg) int { return a.visibleAt.Compare(b.visibleAt) })
	return due
}

// takeLocked delivers up to n of due (sorted by visibility) that are visible now, counting
// the receive, hiding each for the queue's visibility timeout, and redriving past maxReceives.
func (q *memQueue) takeLocked(due []*memMsg, n int) events.SQSEvent {
	now := q.clock.Now()
	var ev events.SQSEvent
	for _, m := range due {
		if len(ev.Records) == n || m.visibleAt.After(now) {
			break
		}
		m.receives++
		if q.maxReceives > 0 && m.receives > q.maxReceives {
			// SQS's redrive: past maxReceiveCount the message moves, without a reason.
			q.dead = append(q.dead, m.body)
			delete(q.msgs, m.id)
			continue
		}
		q.seq++
		m.receipt = "r" + strconv.Itoa(q.seq)
		m.visibleAt = now.Add(180 * time.Second) // the queue's visibility timeout
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: m.id, ReceiptHandle: m.receipt, Body: m.body,
			Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives)}})
	}
	return ev
}

// settle deletes the acknowledged messages of a batch (those not in failures).
func (q *memQueue) settle(ev events.SQSEvent, resp events.SQSEventResponse) {
	q.mu.Lock()
	defer q.mu.Unlock()
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, r := range ev.Records {
		if !failed[r.MessageId] {
			delete(q.msgs, r.MessageId)
		}
	}
}

// alertLog records alerts.
type alertLog struct {
	mu  sync.Mutex
	got []oncall.Alert
}

func (a *alertLog) Alert(_ context.Context, al oncall.Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, al)
	return nil
}

func (a *alertLog) reasons() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, al := range a.got {
		out = append(out, al.Reason)
	}
	return out
}

// world is the worker as deployed (engine, api_call runner, Sessions with Limits, the tokens
// table on moto), the simulator and an in-memory jobs queue, all on one fake clock.
type world struct {
	t      testing.TB
	clock  *fakeclock.Clock
	sim    *pdsimtest.TestServer
	store  *tokenstore.Store
	queue  *memQueue
	alerts *alertLog
	limits *pdwork.Limits
	engine *worker.Engine
}

func newWorld(t testing.TB, simCfg pdsim.Config) *world {
	t.Helper()
	// The simulator's api_domain is loopback (pdoauth.EnvAllowLoopback).
	t.Setenv("PIPEDRIVE_ALLOW_LOOPBACK", "true")
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	clock := fakeclock.New(lt0)
	simCfg.ClientID, simCfg.ClientSecret, simCfg.Now = testenv.ClientID, testenv.ClientSecret, clock.Now
	sim := pdsimtest.New(t, simCfg)
	store := &tokenstore.Store{DB: testenv.DynamoDB(t), Table: res.TableName, Now: clock.Now}
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
	if _, err := store.Install(t.Context(), installation.Installation{
		ID:          installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID},
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: tok.APIDomain,
		Scopes: strings.Split(tok.Scope, ","), ExpiresAt: clock.Now().Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	log := runLogger()
	creds := &clientcreds.Source{Client: secretsmanager.NewFromConfig(cfg), SecretID: res.SecretID, Logger: log}
	al := &alertLog{}
	notifier := alerts.Notifier{Sender: al}
	limits := &pdwork.Limits{Gates: store, Alerts: notifier, Now: clock.Now, Log: log,
		// Virtual time: a wait moves the clock to its end (when no one moved it further).
		Sleep: func(_ context.Context, d time.Duration) error {
			target := clock.Now().Add(d)
			if target.After(clock.Now()) {
				clock.Set(target)
			}
			return nil
		}}
	sessions := &pdwork.Sessions{
		Installations: store,
		Refresher: &refresh.Refresher{
			OAuth: &pdoauth.Client{BaseURL: sim.URL, Credentials: creds.OAuthCredentials, HTTP: oauthHTTP(sim)},
			Store: store, Owner: "limits-test", Now: clock.Now, Log: log,
		},
		API:    &pdapi.Client{HTTP: sim.HTTP.Client()},
		Alerts: notifier, Limits: limits, Now: clock.Now,
	}
	q := &memQueue{clock: clock, maxReceives: res.MaxReceiveCount, msgs: map[string]*memMsg{}}
	engine := &worker.Engine{
		Name:    "limits-test",
		Log:     log,
		Runners: map[string]worker.Runner{jobs.KindAPICall: &pdwork.APICall{Sessions: sessions}},
		Claims:  store, Queue: q, Alerts: notifier,
		Config: worker.Config{JobsQueueURL: jobsURL, DeadLetterQueueURL: dlqURL, MaxReceives: res.MaxReceiveCount, Now: clock.Now},
	}
	return &world{t: t, clock: clock, sim: sim, store: store, queue: q, alerts: al, limits: limits, engine: engine}
}

// enqueue puts n api_call jobs on the queue.
func (w *world) enqueue(prefix string, n int, method, path string) {
	w.t.Helper()
	for i := range n {
		j := jobs.Job{ID: fmt.Sprintf("%s-%d", prefix, i), Kind: jobs.KindAPICall, CompanyID: pdsim.DefaultCompanyID,
			UserID: pdsim.DefaultUserID, Method: method, Path: path}
		b, _ := json.Marshal(j)
		if _, err := w.queue.SendMessage(w.t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(jobsURL), MessageBody: aws.String(string(b))}); err != nil {
			w.t.Fatal(err)
		}
	}
}

// drainBefore runs the batches visible before until, and leaves the clock there.
func (w *world) drainBefore(until time.Time) {
	w.t.Helper()
	for {
		ev, ok := w.queue.nextBefore(10, until)
		if !ok {
			break
		}
		if len(ev.Records) > 0 {
			w.queue.settle(ev, w.engine.RunBatch(w.t.Context(), ev))
		}
	}
	if w.clock.Now().Before(until) {
		w.clock.Set(until)
	}
}

// drain runs batches until the queue is empty or the clock passes until; each batch is
// followed by every hook whose time has come.
func (w *world) drain(until time.Time, each func()) {
	w.t.Helper()
	for w.clock.Now().Before(until) {
		ev, ok := w.queue.next(10)
		if !ok {
			return
		}
		if each != nil {
			each()
		}
		if len(ev.Records) == 0 {
			continue
		}
		resp := w.engine.RunBatch(w.t.Context(), ev)
		w.queue.settle(ev, resp)
	}
}

// TestSpentBudgetPausesTheCompany: the company's budget is spent with 50 jobs queued. None is
// dead-lettered, Pipedrive sees at most one call per probe interval while the budget is spent,
// one alert is sent, and after the budget returns (the server's midnight) all 50 are done.
func TestSpentBudgetPausesTheCompany(t *testing.T) {
	w := newWorld(t, pdsim.Config{TokenBudget: true, RateLimit: 1000})
	start := time.Date(2026, 9, 1, 21, 0, 0, 0, time.UTC) // three hours before the budget returns
	w.clock.Set(start)
	w.sim.SpendBudget(pdsim.DefaultCompanyID, 1<<30)
	w.enqueue("budget", 50, "GET", "/api/v2/deals")
	midnight := time.Date(2026, 9, 2, 0, 0, 0, 0, time.UTC)
	var calls []time.Time
	seen := 0
	w.drain(midnight.Add(time.Hour), func() {
		if n := w.sim.Counters().APIByStatus[429]; n > seen {
			calls, seen = append(calls, w.clock.Now()), n
		}
	})
	c := w.sim.Counters()
	if got := len(w.queue.dead); got != 0 {
		t.Errorf("dead letters = %d, want 0", got)
	}
	if got := c.APIByStatus[200]; got != 50 {
		t.Errorf("calls answered 200 = %d, want 50 (every job done after the reset)", got)
	}
	// The calls already on their way when the first answer paused the company (at most one
	// batch's concurrency), then one probe per interval until midnight.
	if limit := worker.DefaultConcurrency + int(midnight.Sub(start)/pdwork.DefaultProbeInterval); c.APIByStatus[429] > limit {
		t.Errorf("calls answered 429 while paused = %d, want at most %d (one per probe interval)", c.APIByStatus[429], limit)
	}
	// The calls that were already on their way when the first answer paused the company
	// are refused at lt0; after that, one probe per interval.
	probes := slices.DeleteFunc(slices.Clone(calls), func(at time.Time) bool { return at.Equal(start) })
	for i := 1; i < len(probes); i++ {
		if gap := probes[i].Sub(probes[i-1]); gap < pdwork.DefaultProbeInterval {
			t.Errorf("probes %d and %d only %s apart, want at least the probe interval", i-1, i, gap)
		}
	}
	if got := w.alerts.reasons(); !slices.Equal(got, []string{"daily_budget_exceeded"}) {
		t.Errorf("alerts = %v, want one daily_budget_exceeded", got)
	}
	if g, _ := w.store.Gate(t.Context(), pdsim.DefaultCompanyID); g.Paused {
		t.Errorf("gate after the reset = %+v, want the pause lifted", g)
	}
}

// TestAccountStatesPause: 402, feature capping and 415 pause the company with one alert each
// and dead-letter nothing; once the account is open again (and the pause lifted, as pdctl
// does) the jobs are done.
func TestAccountStatesPause(t *testing.T) {
	for _, tt := range []struct {
		state  pdsim.AccountState
		reason string
		status int
	}{
		{pdsim.AccountPaymentRequired, "payment_required", 402},
		{pdsim.AccountFeatureCapped, "feature_capped", 403},
		{pdsim.AccountFeatureDisabled, "feature_not_enabled", 415},
	} {
		t.Run(string(tt.state), func(t *testing.T) {
			w := newWorld(t, pdsim.Config{})
			if err := w.sim.SetAccountState(pdsim.DefaultCompanyID, tt.state); err != nil {
				t.Fatal(err)
			}
			w.enqueue("acct", 10, "GET", "/api/v2/deals")
			var at []string
			seen := 0
			w.drain(lt0.Add(3*time.Hour), func() {
				if n := w.sim.Counters().APIByStatus[tt.status]; n > seen {
					at, seen = append(at, fmt.Sprintf("%s×%d", w.clock.Now().Sub(lt0), n-seen)), n
				}
			})
			if got := len(w.queue.dead); got != 0 {
				t.Errorf("dead letters = %d, want 0", got)
			}
			if got := w.alerts.reasons(); !slices.Equal(got, []string{tt.reason}) {
				t.Errorf("alerts = %v, want one %s", got, tt.reason)
			}
			// The first batch's calls (at most its concurrency), then one probe an hour (a
			// probe whose token expired meanwhile also spends a 401 and a refresh).
			if calls, limit := w.sim.Counters().APIByStatus[tt.status], worker.DefaultConcurrency+3; calls > limit {
				t.Errorf("calls answered %d while the account is closed = %d (%v), want at most %d", tt.status, calls, at, limit)
			}
			if err := w.sim.SetAccountState(pdsim.DefaultCompanyID, pdsim.AccountOpen); err != nil {
				t.Fatal(err)
			}
			if lifted, err := w.store.LiftPause(t.Context(), pdsim.DefaultCompanyID); err != nil || !lifted {
				t.Fatalf("LiftPause = %v, %v; want lifted", lifted, err)
			}
			w.clock.Advance(2 * time.Second) // past the worker's gate cache
			w.drain(w.clock.Now().Add(time.Hour), nil)
			if got := w.sim.Counters().APIByStatus[200]; got != 10 || len(w.queue.dead) != 0 {
				t.Errorf("after the lift: %d calls answered 200, %d dead letters; want 10 and 0", got, len(w.queue.dead))
			}
		})
	}
}

// TestBurstIsPaced: 400 jobs for one user at a burst limit of 80 per 2 s: at most 1% of the
// calls are answered 429, none is dead-lettered, and the run takes about the plan rate's time.
func TestBurstIsPaced(t *testing.T) {
	w := newWorld(t, pdsim.Config{RateLimit: 80})
	const n = 400
	w.enqueue("burst", n, "GET", "/api/v2/deals")
	start := w.clock.Now()
	w.drain(start.Add(time.Hour), nil)
	c := w.sim.Counters()
	total := 0
	for _, k := range c.APIByStatus {
		total += k
	}
	if c.APIByStatus[404]+c.APIByStatus[200] != n || len(w.queue.dead) != 0 {
		t.Errorf("answers %v, %d dead letters; want %d answered, none dead-lettered", c.APIByStatus, len(w.queue.dead), n)
	}
	if c.APIByStatus[429]*100 > total {
		t.Errorf("429s = %d of %d calls, want at most 1%%", c.APIByStatus[429], total)
	}
	floor := time.Duration(n/40) * time.Second
	if took := w.clock.Now().Sub(start); took > floor*13/10 {
		t.Errorf("%d jobs took %s of simulated time, want near the plan-rate floor %s", n, took, floor)
	}
}

// TestPacingSharesTheWindow: worker instances that do not talk to each other (each its own
// Limits, as separate Lambda instances are) call for one token in turn, evenly or not, at a
// window of 80 per 2 s: no call is answered 429 and the calls run close to the plan's rate
// (the Reserve kept free), not in bursts that wait for the whole-second reset.
func TestPacingSharesTheWindow(t *testing.T) {
	for _, tt := range []struct {
		name  string
		turns []int // instance of each call, round after round
	}{
		{"four instances, even", []int{0, 1, 2, 3}},
		{"four instances, uneven", []int{0, 0, 0, 1, 1, 2, 3}},
		{"two instances", []int{0, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, pdsim.Config{RateLimit: 80})
			tok, err := w.sim.IssueToken(pdsim.DefaultUserID)
			if err != nil {
				t.Fatal(err)
			}
			secrets.Add("access token", tok.AccessToken)
			secrets.Add("refresh token", tok.RefreshToken)
			api := &pdapi.Client{HTTP: w.sim.HTTP.Client()}
			instances := make([]*pdwork.Limits, slices.Max(tt.turns)+1)
			for i := range instances {
				instances[i] = &pdwork.Limits{Gates: w.store, Now: w.clock.Now, Log: runLogger(),
					Sleep: func(_ context.Context, d time.Duration) error {
						if target := w.clock.Now().Add(d); target.After(w.clock.Now()) {
							w.clock.Set(target)
						}
						return nil
					}}
			}
			j := jobs.Job{ID: "pace", Kind: jobs.KindAPICall, CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
			const n = 800
			start := w.clock.Now()
			for i := range n {
				// Each call's job takes a little while (its claim, its reads) before it asks.
				w.clock.Advance(10 * time.Millisecond)
				done, v := instances[tt.turns[i%len(tt.turns)]].Acquire(t.Context(), j, "GET", "/api/v2/deals")
				if v != nil {
					t.Fatalf("call %d: Acquire = %+v, want a slot", i, *v)
				}
				resp, err := api.Do(t.Context(), "GET", tok.APIDomain, "/api/v2/deals", tok.AccessToken, nil)
				done(resp.Header, pderrors.DecisionOf(err))
			}
			took := w.clock.Now().Sub(start)
			if got := w.sim.Counters().APIByStatus[429]; got != 0 {
				t.Errorf("calls answered 429 = %d, want 0", got)
			}
			// The floor is the plan's rate; Reserve (5 of 80) keeps a sixteenth free.
			if floor := time.Duration(n/40) * time.Second; took > floor*115/100 {
				t.Errorf("%d calls took %s of simulated time, want at most 1.15 × the plan-rate floor %s", n, took, floor)
			}
		})
	}
}

// TestOutageOfTwoHours: Pipedrive answers 503 for two hours; the jobs are retried on the
// backoff (not attempts spent on a schedule of minutes) and done afterwards, none
// dead-lettered.
func TestOutageOfTwoHours(t *testing.T) {
	w := newWorld(t, pdsim.Config{})
	w.sim.Inject(pdsim.Fault{Path: "/api/v2/*", Status: 503})
	w.enqueue("outage", 5, "GET", "/api/v2/deals")
	end := lt0.Add(2 * time.Hour)
	w.drain(lt0.Add(8*time.Hour), func() {
		if !w.clock.Now().Before(end) {
			w.sim.ClearFaults()
		}
	})
	if got := len(w.queue.dead); got != 0 {
		t.Errorf("dead letters = %d, want 0", got)
	}
	if got := w.sim.Counters().APIByStatus[200]; got != 5 {
		t.Errorf("calls answered 200 = %d, want 5", got)
	}
	if got := w.alerts.reasons(); len(got) != 0 {
		t.Errorf("alerts = %v, want none", got)
	}
}
