// Package pdkittest runs an app built on the kit against Pipedrive without Pipedrive, in the
// app's own tests, as net/http/httptest runs a handler without a network: moto_server for AWS
// (the tables, queues, topic and secret of the kit's template.yaml), the kit's Pipedrive
// simulator, and the kit's four functions with the app's handlers in the test's process (the
// webhook receiver and the callback behind a local HTTP API, the worker fed by the jobs queue).
//
//	st := pdkittest.Start(t, myapp.New())
//	st.Install()
//	deal := st.CreateDeal("Big deal")
//	st.WaitFor("a note on the deal", func() bool { return len(st.Notes(deal)) == 1 })
//
// It needs moto_server on the PATH (pip install 'moto[server]'), as the kit's own tests do.
// Start sets PIPEDRIVE_ALLOW_LOOPBACK=true in the test process (the simulator's API domain is
// on loopback, which the kit refuses otherwise) and nothing else, so tests may run in
// parallel, each with its own stack. It is for tests only: never link it into a function.
package pdkittest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	kitapp "github.com/pdkit/pipedrive-lambda-kit/internal/app"
	"github.com/pdkit/pipedrive-lambda-kit/internal/functions/apicall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/functions/callback"
	"github.com/pdkit/pipedrive-lambda-kit/internal/functions/refresher"
	"github.com/pdkit/pipedrive-lambda-kit/internal/functions/webhooks"
	"github.com/pdkit/pipedrive-lambda-kit/internal/localstack"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
	"github.com/pdkit/pipedrive-lambda-kit/pdkit"
)

// DefaultWait bounds WaitFor.
const DefaultWait = 30 * time.Second

// RetryBackoff is the stack's wait before retrying work that failed without a time to retry
// at (a 500, an app's error): a second, where the deployed worker waits 30 s, then 1 min, …,
// so a test sees the retry soon. A 429's Retry-After is kept as Pipedrive sent it.
const RetryBackoff = time.Second

// ClaimLease is how long a running job's claim holds off its duplicates (a copy queued again
// while it runs waits for the lease's end, then finds it done): 10 s, where the deployed worker
// holds 2 min, so Settle sees duplicates settled soon. A handler in a test must finish within it.
const ClaimLease = 10 * time.Second

// Stack is the kit's backend running one app, with a simulated Pipedrive. Its methods fail
// the test (t.Fatal) when the stack does not answer as Pipedrive and AWS would.
type Stack struct {
	t  testing.TB
	st *localstack.Stack
	// Log holds every function's JSON log lines (one event per decision).
	Log *Buffer
}

// Start brings up moto, the simulator and the four functions running app in process, and
// stops them when t ends. The functions read the environment the kit's template.yaml gives
// each (WebhookEvents and the other parameters at their defaults), with the simulator as
// Pipedrive.
func Start(t testing.TB, app *pdkit.App) *Stack {
	t.Helper()
	a, err := kitapp.Of(app)
	if err != nil {
		t.Fatalf("pdkittest: %v", err)
	}
	// The simulator's api_domain is http on loopback: accepted only when told, as everywhere
	// the kit's own tests run it.
	os.Setenv(pdoauth.EnvAllowLoopback, "true")
	log := &Buffer{}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	st, err := localstack.Start(ctx, localstack.Config{
		Root:     ".",
		WorkDir:  t.TempDir(),
		Handlers: handlers(a, log),
	})
	if err != nil {
		t.Fatalf("pdkittest: start the stack: %v", err)
	}
	t.Cleanup(st.Close)
	return &Stack{t: t, st: st, Log: log}
}

// handlers runs each function of the template in process with app a, logging to log.
func handlers(a kitapp.App, log io.Writer) func(ctx context.Context, id string, env map[string]string, cfg aws.Config) (localstack.Invoker, error) {
	return func(ctx context.Context, id string, env map[string]string, cfg aws.Config) (localstack.Invoker, error) {
		o := wire.Options{Getenv: func(k string) string { return env[k] }, AWS: &cfg, LogOutput: log}
		switch id {
		case "CallbackFunction":
			return callback.New(ctx, a, o)
		case "RefresherFunction":
			return refresher.New(ctx, a, o)
		case "ApiCallFunction":
			return apicall.New(ctx, a, o, func(c *worker.Config) {
				c.Backoff = func(int) time.Duration { return RetryBackoff }
				c.ClaimLease = ClaimLease
			})
		case "WebhooksFunction":
			return webhooks.New(ctx, a, o)
		}
		return nil, fmt.Errorf("pdkittest: template.yaml defines function %s, which pdkittest does not know", id)
	}
}

// Install installs the app for the simulated user as they would (the install link, consent,
// the callback), then waits until the worker has registered the app's webhooks (and run
// App.OnInstall, whose job is queued with the registration). It returns the installation.
func (s *Stack) Install() pdkit.Installation {
	s.t.Helper()
	id, err := s.st.Install(s.t.Context())
	if err != nil {
		s.t.Fatalf("pdkittest: install: %v\nfunction logs:\n%s", err, s.Log)
	}
	s.WaitFor("the app's webhooks registered at Pipedrive", func() bool { return len(s.st.Simulator.Webhooks(id.UserID)) > 0 })
	s.Settle()
	return pdkit.Installation{CompanyID: id.CompanyID, UserID: id.UserID}
}

// Uninstall sends Pipedrive's uninstall request for the installing user (as Pipedrive does
// when they remove the app) and waits until its work has run (App.OnUninstall).
func (s *Stack) Uninstall() {
	s.t.Helper()
	status, err := s.st.Simulator.Uninstall(s.t.Context(), s.st.GatewayURL+"/oauth/callback", localstack.DemoUserID)
	if err != nil || status != http.StatusOK {
		s.t.Fatalf("pdkittest: uninstall = %d, %v; want 200\nfunction logs:\n%s", status, err, s.Log)
	}
	s.Settle()
}

// CreateDeal creates a deal titled title at Pipedrive as the installing user would in the
// web app, waits until Pipedrive has delivered its webhooks, and returns the deal's id.
func (s *Stack) CreateDeal(title string) int64 {
	s.t.Helper()
	ev, _, err := s.st.Simulator.ActAsUser(pdsim.UserAction{UserID: localstack.DemoUserID, Object: "deal", Action: "create",
		Fields: map[string]any{"title": title}})
	if err != nil {
		s.t.Fatalf("pdkittest: create a deal: %v", err)
	}
	if err := s.st.Simulator.WaitDeliveries(s.t.Context()); err != nil {
		s.t.Fatalf("pdkittest: webhook delivery: %v", err)
	}
	return ev.EntityID
}

// Get reads Pipedrive's API as the installing user, outside the app (for a test's checks),
// and decodes the JSON answer into out. path is relative to the API domain, e.g.
// "/api/v1/notes?deal_id=7".
func (s *Stack) Get(path string, out any) {
	s.t.Helper()
	tok, err := s.st.Simulator.IssueToken(localstack.DemoUserID)
	if err != nil {
		s.t.Fatalf("pdkittest: %v", err)
	}
	req, err := http.NewRequestWithContext(s.t.Context(), http.MethodGet, tok.APIDomain+path, nil)
	if err != nil {
		s.t.Fatalf("pdkittest: GET %s: %v", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("pdkittest: GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 10<<20))
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("pdkittest: GET %s = %d: %.300s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		s.t.Fatalf("pdkittest: GET %s: %v", path, err)
	}
}

// Note is a note as Pipedrive lists it.
type Note struct {
	ID      int64  `json:"id"`
	DealID  int64  `json:"deal_id"`
	Content string `json:"content"`
}

// Notes lists the notes of deal dealID at Pipedrive.
func (s *Stack) Notes(dealID int64) []Note {
	s.t.Helper()
	var page struct {
		Data []Note `json:"data"`
	}
	s.Get("/api/v1/notes?deal_id="+strconv.FormatInt(dealID, 10)+"&limit=500", &page)
	return page.Data
}

// Fault makes Pipedrive answer requests with a failure, as pdsim's faults do.
type Fault struct {
	// Method and Path match the request ("" matches any; a Path ending in "*" is a prefix),
	// e.g. "POST" and "/api/v1/notes".
	Method, Path string
	// Status is the answer: 429 (with RetryAfter), 500, 503, …
	Status int
	// RetryAfter is sent as Retry-After (whole seconds) when not zero.
	RetryAfter time.Duration
	// Times limits the fault to the next Times matching requests; 0 means until the test ends.
	Times int
}

// Fail injects f at the simulated Pipedrive.
func (s *Stack) Fail(f Fault) {
	s.t.Helper()
	pf := pdsim.Fault{Method: f.Method, Path: f.Path, Status: f.Status, Times: f.Times}
	if f.RetryAfter > 0 {
		pf.Header = http.Header{"Retry-After": {strconv.Itoa(int((f.RetryAfter + time.Second - 1) / time.Second))}}
	}
	if err := pf.Validate(); err != nil {
		s.t.Fatalf("pdkittest: fault %+v: %v", f, err)
	}
	s.st.Simulator.Inject(pf)
}

// Requests counts the API requests Pipedrive answered for route, "METHOD path-template" as
// Pipedrive documents it (e.g. "POST /api/v1/notes", "GET /api/v2/deals/{id}"): the app's, the
// kit's and Get's.
func (s *Stack) Requests(route string) int {
	return s.st.Simulator.Counters().APIByRoute[route]
}

// WaitFor polls cond until it holds, failing the test after DefaultWait with what.
func (s *Stack) WaitFor(what string, cond func() bool) {
	s.t.Helper()
	for deadline := time.Now().Add(DefaultWait); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.t.Fatalf("pdkittest: %s: not after %s; the functions' last log lines:\n%s", what, DefaultWait, s.Log.tail(30))
		}
	}
}

// Settle waits until the jobs queue is empty: every event, hook and job queued so far has run
// to its end (done, skipped or dead-lettered), including retries the worker delayed. It fails
// the test after DefaultWait.
func (s *Stack) Settle() {
	s.t.Helper()
	q := sqs.NewFromConfig(s.st.AWS)
	s.WaitFor("the jobs queue to empty", func() bool {
		out, err := q.GetQueueAttributes(s.t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(s.st.Resources.JobsQueueURL),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
		if err != nil {
			s.t.Fatalf("pdkittest: jobs queue: %v", err)
		}
		for _, v := range out.Attributes {
			if v != "0" {
				return false
			}
		}
		return true
	})
}

// DeadLetters counts the jobs on the dead-letter queue (work the kit gave up on, with its
// reason in the message attributes).
func (s *Stack) DeadLetters() int {
	s.t.Helper()
	out, err := sqs.NewFromConfig(s.st.AWS).GetQueueAttributes(s.t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(s.st.Resources.DeadLetterQueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		s.t.Fatalf("pdkittest: dead-letter queue: %v", err)
	}
	n, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	return n
}

// Buffer collects log output; safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail is the last n lines written.
func (b *Buffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
