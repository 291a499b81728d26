package apicall

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// TestRetryHidesTheMessageForRetryAfter checks on the real queue that a retried message comes
// back after the server's Retry-After, not after the queue's 180 s visibility timeout.
func TestRetryHidesTheMessageForRetryAfter(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 429, Times: 1, Header: http.Header{"Retry-After": {"2"}}})
	body := encode(t, job("visibility", "GET", "/api/v2/deals", ""))
	msgs, failed := e.deliver(body)
	handled := time.Now()
	if !slices.Equal(failed, []string{*msgs[0].MessageId}) {
		t.Fatalf("batch item failures = %v, want the message", failed)
	}
	if got := e.receive(e.res.JobsQueueURL, 1, time.Second); len(got) != 0 {
		t.Fatalf("message receivable %v after a Retry-After of 2 s, want hidden", time.Since(handled).Round(time.Millisecond))
	}
	again := e.receive(e.res.JobsQueueURL, 1, 6*time.Second)
	if len(again) != 1 {
		t.Fatalf("message not receivable %v after a Retry-After of 2 s (the queue's own timeout is 180 s)", time.Since(handled).Round(time.Millisecond))
	}
	if waited := time.Since(handled); waited < 1500*time.Millisecond {
		t.Errorf("message came back after %v, want about 2 s", waited)
	}
	if got := again[0].Attributes["ApproximateReceiveCount"]; got != "2" {
		t.Errorf("ApproximateReceiveCount = %q, want 2", got)
	}
	if failed := e.handleSQS(e.sqsEvent(again)); len(failed) != 0 {
		t.Errorf("second delivery failures = %v, want none", failed)
	}
	if d := e.decisionFor("visibility"); d.Action != string(worker.OutcomeSucceeded) || d.ReceiveCount != 2 {
		t.Errorf("second delivery decision = %s receive %d, want succeeded at receive 2", d.Action, d.ReceiveCount)
	}
	if got := e.apiCalls(); !maps.Equal(got, map[int]int{429: 1, 200: 1}) {
		t.Errorf("simulator answers = %v, want one 429 and one 200", got)
	}
}

// TestMixedBatchReportsExactlyTheRetries runs one batch whose jobs end every way and checks that
// only the retried messages are reported.
func TestMixedBatchReportsExactlyTheRetries(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	e.sim.Inject(pdsim.Fault{Path: "/api/v2/persons", Status: 500})
	e.sim.Inject(pdsim.Fault{Path: "/api/v2/activities", Status: 429, Header: http.Header{"Retry-After": {"3"}}})
	bodies := map[string]string{
		"ok":        encode(t, job("mixed-ok", "GET", "/api/v2/deals", "")),
		"not found": encode(t, job("mixed-404", "GET", "/api/v2/deals/999", "")),
		"500":       encode(t, job("mixed-500", "GET", "/api/v2/persons", "")),
		"malformed": `{"id":"mixed-bad","kind":"api_call","company_id":3408256,"user_id":5206648}`, // no method or path
		"429":       encode(t, job("mixed-429", "GET", "/api/v2/activities", "")),
		"uninstall": encode(t, job("mixed-gone-user", "GET", "/api/v2/deals", "")),
	}
	// The last job is for a user who never installed.
	var u map[string]any
	_ = json.Unmarshal([]byte(bodies["uninstall"]), &u)
	u["user_id"] = 999
	b, _ := json.Marshal(u)
	bodies["uninstall"] = string(b)

	order := slices.Sorted(maps.Keys(bodies))
	var list []string
	for _, k := range order {
		list = append(list, bodies[k])
	}
	msgs, failed := e.deliver(list...)
	idOf := map[string]string{}
	for _, m := range msgs {
		for k, b := range bodies {
			if aws.ToString(m.Body) == b {
				idOf[k] = *m.MessageId
			}
		}
	}
	want := []string{idOf["500"], idOf["429"]}
	slices.Sort(want)
	if !slices.Equal(failed, want) {
		t.Errorf("batch item failures = %v, want exactly the 500 and 429 messages %v", failed, want)
	}
	reasons := map[string]string{}
	for _, m := range e.deadLetters() {
		reasons[attr(m, "job_id")] = attr(m, "reason")
	}
	wantDead := map[string]string{"mixed-404": "not_found", "mixed-bad": worker.ReasonInvalidJob, "mixed-gone-user": pdwork.ReasonInstallationNotFound}
	if !maps.Equal(reasons, wantDead) {
		t.Errorf("dead letters by job = %v, want %v", reasons, wantDead)
	}
}

// TestDuplicateDeliveryCallsPipedriveOnce: SQS delivers at least once and webhook-triggered
// producers enqueue the same work twice; a job ID runs once.
func TestDuplicateDeliveryCallsPipedriveOnce(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	body := encode(t, job("dup-seq", "POST", "/api/v2/deals", `{"title":"Once only"}`))

	_, failed := e.deliver(body)
	if len(failed) != 0 {
		t.Fatalf("first delivery failures = %v, want none", failed)
	}
	// A second message with the same job, and a redelivery of it.
	msgs, failed := e.deliver(body)
	if len(failed) != 0 {
		t.Errorf("duplicate delivery failures = %v, want none (acknowledged)", failed)
	}
	if failed := e.handleSQS(e.sqsEvent(msgs)); len(failed) != 0 {
		t.Errorf("redelivery failures = %v, want none", failed)
	}
	var actions []string
	for _, d := range e.decisions() {
		actions = append(actions, d.Action)
	}
	if want := []string{"succeeded", "duplicate", "duplicate"}; !slices.Equal(actions, want) {
		t.Errorf("decisions = %v, want %v", actions, want)
	}
	if got := e.sim.Counters().APIByRoute["POST /api/v2/deals"]; got != 1 {
		t.Errorf("POST /api/v2/deals calls = %d, want 1", got)
	}
	if got := e.deadLetters(); len(got) != 0 {
		t.Errorf("dead letters = %d, want none", len(got))
	}
}

func TestConcurrentDuplicatesCallPipedriveOnce(t *testing.T) {
	t.Run("same batch", func(t *testing.T) {
		e := newEnv(t)
		e.install(pdsim.DefaultUserID)
		// Slow answers keep the first delivery's claim in progress while the second arrives.
		e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Latency: 500 * time.Millisecond})
		body := encode(t, job("dup-batch", "POST", "/api/v2/deals", `{"title":"Once only"}`))
		q := e.undelayed()
		if _, failed := e.deliver(body, body); len(failed) != 0 {
			t.Fatalf("batch item failures = %v, want none: the delivery that found the job in progress is deferred, not retried", failed)
		}
		e.wantOneCallThenDuplicate(q)
	})
	t.Run("two invocations", func(t *testing.T) {
		e := newEnv(t)
		e.install(pdsim.DefaultUserID)
		e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Latency: 500 * time.Millisecond})
		body := encode(t, job("dup-lambdas", "POST", "/api/v2/deals", `{"title":"Once only"}`))
		q := e.undelayed()
		e.send(body, body)
		msgs := e.receive(e.res.JobsQueueURL, 2, 5*time.Second)
		if len(msgs) != 2 {
			t.Fatalf("received %d messages, want 2", len(msgs))
		}
		var wg sync.WaitGroup
		failed := make([][]string, 2)
		for i := range msgs {
			wg.Go(func() { failed[i] = e.handleSQS(e.sqsEvent(msgs[i : i+1])) })
		}
		wg.Wait()
		if all := slices.Concat(failed...); len(all) != 0 {
			t.Fatalf("failures of two concurrent invocations = %v, want none (the one that found the job in progress is deferred)", failed)
		}
		e.wantOneCallThenDuplicate(q)
	})
}

// wantOneCallThenDuplicate checks that one delivery created the deal and the other found it in
// progress and was deferred (a copy re-sent through q, delayed until the claim's lease ends),
// then brings the copy back and expects a duplicate.
func (e *env) wantOneCallThenDuplicate(q *undelayedQueue) {
	e.t.Helper()
	if got := e.sim.Counters().APIByRoute["POST /api/v2/deals"]; got != 1 {
		e.t.Errorf("POST /api/v2/deals calls = %d, want 1", got)
	}
	var actions []string
	for _, d := range e.decisions() {
		actions = append(actions, d.Action+"/"+d.Reason)
	}
	slices.Sort(actions)
	if want := []string{"deferred/" + worker.ReasonInProgress, "succeeded/ok"}; !slices.Equal(actions, want) {
		e.t.Errorf("decisions = %v, want %v", actions, want)
	}
	// The copy waits until the claim's lease would end (a crashed owner's claim can be taken
	// over then); the test's clock skips the wait.
	if delays, lease := q.sent(), int32(worker.CeilSeconds(worker.DefaultClaimLease)); len(delays) != 1 || delays[0] < lease {
		e.t.Errorf("copies re-sent with delays %v, want one of at least the claim's lease, %d s", delays, lease)
	}
	back := e.receive(e.res.JobsQueueURL, 1, 5*time.Second)
	if len(back) != 1 || back[0].Attributes["ApproximateReceiveCount"] != "1" {
		e.t.Fatalf("received %d messages, want the postponed job's copy", len(back))
	}
	if failed := e.handleSQS(e.sqsEvent(back)); len(failed) != 0 {
		e.t.Errorf("postponed delivery failures = %v, want none", failed)
	}
	if d := e.decisions(); d[len(d)-1].Action != string(worker.OutcomeDuplicate) {
		e.t.Errorf("postponed delivery decision = %s, want duplicate", d[len(d)-1].Action)
	}
	if got := e.sim.Counters().APIByRoute["POST /api/v2/deals"]; got != 1 {
		e.t.Errorf("POST /api/v2/deals calls after the redelivery = %d, want 1", got)
	}
}

// TestMalformedMessagesAreDeadLettered runs a literal SQS event of messages that are not jobs:
// each goes to the dead-letter queue unchanged with its reason, none is retried, Pipedrive is
// not called.
func TestMalformedMessagesAreDeadLettered(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	raw, err := os.ReadFile("testdata/sqs_malformed.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	out, err := e.h.Handle(t.Context(), raw)
	if err != nil {
		t.Fatalf("Handle(fixture) error = %v", err)
	}
	if resp := out.(events.SQSEventResponse); len(resp.BatchItemFailures) != 0 {
		t.Errorf("batch item failures = %v, want none: a malformed message is never retried", resp.BatchItemFailures)
	}
	dead := e.deadLetters()
	if len(dead) != len(ev.Records) {
		t.Fatalf("dead letters = %d, want %d", len(dead), len(ev.Records))
	}
	bodies := map[string]bool{}
	for _, m := range dead {
		bodies[aws.ToString(m.Body)] = true
		if attr(m, "reason") != worker.ReasonInvalidJob || attr(m, "error") == "" || attr(m, "message_id") == "" {
			t.Errorf("dead letter %q: reason %q error %q message_id %q, want invalid_job with an error and the message id",
				aws.ToString(m.Body), attr(m, "reason"), attr(m, "error"), attr(m, "message_id"))
		}
	}
	for _, r := range ev.Records {
		if !bodies[r.Body] {
			t.Errorf("message %s (%q) is not in the dead-letter queue unchanged", r.MessageId, r.Body)
		}
	}
	if got := e.apiCalls(); len(got) != 0 {
		t.Errorf("simulator answers = %v, want no API call", got)
	}
	if got := e.alertReasons(); !slices.Equal(got, []string{worker.ReasonInvalidJob}) {
		t.Errorf("alerts = %v, want one invalid_job (de-duplicated)", got)
	}
}

// resentQueue plays a SendMessage that lands but whose answer is lost: the SDK sends the same
// request again (seen under load: moto answers 200, the connection drops while the SDK reads
// the body, "use of closed network connection", and the retry lands a second copy).
type resentQueue struct {
	worker.Queue
}

func (q resentQueue) SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if _, err := q.Queue.SendMessage(ctx, in, optFns...); err != nil {
		return nil, err
	}
	return q.Queue.SendMessage(ctx, in, optFns...)
}

// TestResentDeadLetterIsOneDeadLetter: a dead letter the SDK sent twice is one dead letter to
// the tests (the worker sent it once), so that at-least-once delivery does not fail them.
func TestResentDeadLetterIsOneDeadLetter(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	e.queue.Queue = resentQueue{e.sqs}
	body := encode(t, job("resent", "GET", "/api/v2/deals/424242", ""))
	if _, failed := e.deliver(body); len(failed) != 0 {
		t.Errorf("batch item failures = %v, want none", failed)
	}
	out, err := e.sqs.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(e.res.DeadLetterQueueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)]; got != "2" {
		t.Fatalf("dead-letter queue holds %s messages, want 2 (the send landed twice)", got)
	}
	dead := e.deadLetters()
	if len(dead) != 1 {
		t.Fatalf("deadLetters() = %d messages, want 1", len(dead))
	}
	wantDeadLetter(t, dead[0], body, "not_found", 404)
}

// TestInstallationStates: jobs for installations that cannot act are dead-lettered before any
// call; a needs-reauthorization installation alerts once.
func TestInstallationStates(t *testing.T) {
	e := newEnv(t)
	for _, u := range []pdsim.User{{ID: 2, CompanyID: 20, CompanyDomain: "gone"}, {ID: 3, CompanyID: 30, CompanyDomain: "lost"}} {
		if err := e.sim.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	gone, lost := e.install(2), e.install(3)
	if _, err := e.store.Uninstall(t.Context(), gone.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Lease(t.Context(), lost.ID, "test", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := e.store.MarkNeedsReauth(t.Context(), lost.ID, "test", "refresh_token_invalid"); err != nil {
		t.Fatal(err)
	}
	for_ := func(id, jobID string, in tokenstore.InstallationID) string {
		j := job(jobID, "GET", "/api/v2/deals", "")
		j.CompanyID, j.UserID = in.CompanyID, in.UserID
		return encode(t, j)
	}
	bodies := []string{
		for_("", "never-installed", tokenstore.InstallationID{CompanyID: 40, UserID: 4}),
		for_("", "uninstalled", gone.ID),
		for_("", "reauth-1", lost.ID),
		for_("", "reauth-2", lost.ID),
	}
	_, failed := e.deliver(bodies...)
	if len(failed) != 0 {
		t.Errorf("batch item failures = %v, want none", failed)
	}
	reasons := map[string]string{}
	for _, m := range e.deadLetters() {
		reasons[attr(m, "job_id")] = attr(m, "reason")
	}
	want := map[string]string{
		"never-installed": pdwork.ReasonInstallationNotFound,
		"uninstalled":     pdwork.ReasonInstallationUninstalled,
		"reauth-1":        pdwork.ReasonNeedsReauth,
		"reauth-2":        pdwork.ReasonNeedsReauth,
	}
	if !maps.Equal(reasons, want) {
		t.Errorf("dead letters by job = %v, want %v", reasons, want)
	}
	if got := e.alertReasons(); !slices.Equal(got, []string{pdwork.ReasonNeedsReauth}) {
		t.Errorf("alerts = %v, want one needs_reauthorization", got)
	}
	if got := e.apiCalls(); len(got) != 0 {
		t.Errorf("simulator answers = %v, want no API call", got)
	}
}

func TestExpiredAccessTokenIsRefreshedBeforeTheCall(t *testing.T) {
	e := newEnv(t)
	old := e.install(pdsim.DefaultUserID)
	e.clock.Advance(2 * time.Hour) // past expiry for the store and the simulator alike
	_, failed := e.deliver(encode(t, job("expired", "GET", "/api/v2/deals", "")))
	if len(failed) != 0 {
		t.Errorf("batch item failures = %v, want none", failed)
	}
	if d := e.decisionFor("expired"); d.Action != string(worker.OutcomeSucceeded) {
		t.Errorf("decision = %s (%s), want succeeded", d.Action, d.Reason)
	}
	if got := e.apiCalls(); !maps.Equal(got, map[int]int{200: 1}) {
		t.Errorf("simulator answers = %v, want one 200 and no 401", got)
	}
	if got := e.refreshes(); got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
	in, err := e.store.Get(t.Context(), acme)
	if err != nil || in.AccessToken == old.AccessToken || !in.ExpiresAt.After(e.clock.Now()) {
		t.Errorf("stored installation after the job: new token %t, expires %s, err %v; want a fresh token", in.AccessToken != old.AccessToken, in.ExpiresAt, err)
	}
}

// TestRefreshHeldByAnotherProcessDefersSoon: a job that finds its installation's refresh in
// progress elsewhere is deferred (not an attempt: Pipedrive was not called), looked at again
// after 5 s.
func TestRefreshHeldByAnotherProcessDefersSoon(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	e.clock.Advance(2 * time.Hour)
	if _, err := e.store.Lease(t.Context(), acme, "scheduled-refresher", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, failed := e.deliver(encode(t, job("busy", "GET", "/api/v2/deals", ""))); len(failed) != 0 {
		t.Errorf("batch item failures = %v, want none (deferred)", failed)
	}
	if d := e.decisionFor("busy"); d.Action != string(worker.OutcomeDeferred) || d.Reason != pdwork.ReasonRefreshInProgress || d.RetryAfterS != 5 {
		t.Errorf("decision = %s (%s) after %d s, want deferred (refresh_in_progress) after 5 s", d.Action, d.Reason, d.RetryAfterS)
	}
	if got := e.apiCalls(); len(got) != 0 {
		t.Errorf("simulator answers = %v, want none", got)
	}
}

// TestRevokedGrantIsDeadLettered: the access token answers 401 and the refresh token is
// rejected too; the installation needs reauthorization.
func TestRevokedGrantIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	e.sim.RevokeUser(pdsim.DefaultUserID)
	body := encode(t, job("revoked", "GET", "/api/v2/deals", ""))
	_, failed := e.deliver(body)
	if len(failed) != 0 {
		t.Errorf("batch item failures = %v, want none", failed)
	}
	dead := e.deadLetters()
	if len(dead) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dead))
	}
	wantDeadLetter(t, dead[0], body, pdwork.ReasonNeedsReauth, 0)
	if got := e.alertReasons(); !slices.Equal(got, []string{"refresh_token_invalid"}) {
		t.Errorf("alerts = %v, want the refresher's refresh_token_invalid", got)
	}
	if in, err := e.store.Get(t.Context(), acme); err != nil || in.Status != tokenstore.StatusNeedsReauth {
		t.Errorf("installation status = %s, %v; want needs_reauthorization", in.Status, err)
	}
}

// TestLastReceiveDeadLettersWithTheReason: at the queue's maxReceiveCount a job still failing
// goes to the dead-letter queue with its last reason instead of SQS's reasonless redrive.
func TestLastReceiveDeadLettersWithTheReason(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 500})
	body := encode(t, job("exhausted", "GET", "/api/v2/deals", ""))
	e.send(body)
	msgs := e.receive(e.res.JobsQueueURL, 1, 5*time.Second)
	ev := e.sqsEvent(msgs)

	// The jobs queue's maxReceiveCount, from template.yaml (the function gets it as
	// JOBS_MAX_RECEIVES): the receive before it retries, the last one dead-letters.
	last := e.res.MaxReceiveCount
	if last < 2 || e.h.Engine.Config.MaxReceives != last {
		t.Fatalf("template maxReceiveCount %d, engine MaxReceives %d: want equal and at least 2", last, e.h.Engine.Config.MaxReceives)
	}
	ev.Records[0].Attributes["ApproximateReceiveCount"] = strconv.Itoa(last - 1)
	if failed := e.handleSQS(ev); len(failed) != 1 {
		t.Errorf("failures at receive %d = %v, want the message (retried)", last-1, failed)
	}
	if d, want := e.decisionFor("exhausted"), worker.CeilSeconds(worker.DefaultBackoff(last-1)); d.RetryAfterS != want {
		t.Errorf("retry after at receive %d = %d s, want %d (backoff of attempt %d)", last-1, d.RetryAfterS, want, last-1)
	}
	ev.Records[0].Attributes["ApproximateReceiveCount"] = strconv.Itoa(last)
	if failed := e.handleSQS(ev); len(failed) != 0 {
		t.Errorf("failures at receive %d = %v, want none (dead-lettered here)", last, failed)
	}
	dead := e.deadLetters()
	if len(dead) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dead))
	}
	wantDeadLetter(t, dead[0], body, worker.ReasonRetriesExhausted, 500)
	if got := attr(dead[0], "error"); !strings.Contains(got, "server_error") || attr(dead[0], "receive_count") != strconv.Itoa(last) {
		t.Errorf("dead letter error %q receive_count %q, want the last reason server_error at receive %d", got, attr(dead[0], "receive_count"), last)
	}
	if got := e.alertReasons(); !slices.Equal(got, []string{worker.ReasonRetriesExhausted}) {
		t.Errorf("alerts = %v, want retries_exhausted", got)
	}
}

// TestNotBeforeDefersWithoutSpendingReceives: a job not yet due is sent again with a delay and
// the original acknowledged, so waiting does not count towards the redrive.
func TestNotBeforeDefersWithoutSpendingReceives(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	j := job("later", "GET", "/api/v2/deals", "")
	j.NotBefore = t0.Add(2 * time.Second)
	body := encode(t, j)
	_, failed := e.deliver(body)
	sent := time.Now()
	if len(failed) != 0 {
		t.Errorf("batch item failures = %v, want none (deferred, acknowledged)", failed)
	}
	if d := e.decisionFor("later"); d.Action != string(worker.OutcomeDeferred) || d.RetryAfterS != 2 {
		t.Errorf("decision = %s after %d s, want deferred after 2 s", d.Action, d.RetryAfterS)
	}
	if got := e.apiCalls(); len(got) != 0 {
		t.Errorf("simulator answers = %v, want none before not_before", got)
	}
	if got := e.receive(e.res.JobsQueueURL, 1, 500*time.Millisecond); len(got) != 0 {
		t.Fatalf("a message was receivable at once, want the copy delayed 2 s")
	}
	again := e.receive(e.res.JobsQueueURL, 1, 6*time.Second)
	if len(again) != 1 || aws.ToString(again[0].Body) != body {
		t.Fatalf("received %d messages, want the same job again", len(again))
	}
	if time.Since(sent) < 1500*time.Millisecond || again[0].Attributes["ApproximateReceiveCount"] != "1" {
		t.Errorf("copy came after %v with receive count %s, want about 2 s and a fresh count", time.Since(sent), again[0].Attributes["ApproximateReceiveCount"])
	}
	if got := attr(again[0], "job_id"); got != "later-attr" {
		t.Errorf("copy's job_id attribute = %q, want the original's", got)
	}
	e.clock.Advance(2 * time.Second)
	if failed := e.handleSQS(e.sqsEvent(again)); len(failed) != 0 {
		t.Errorf("due delivery failures = %v, want none", failed)
	}
	if d := e.decisionFor("later"); d.Action != string(worker.OutcomeSucceeded) {
		t.Errorf("due delivery decision = %s, want succeeded", d.Action)
	}

	t.Run("too far ahead", func(t *testing.T) {
		j := job("much-later", "GET", "/api/v2/deals", "")
		j.NotBefore = e.clock.Now().Add(worker.DefaultMaxDefer + time.Hour)
		body := encode(t, j)
		if _, failed := e.deliver(body); len(failed) != 0 {
			t.Errorf("batch item failures = %v, want none", failed)
		}
		dead := e.deadLetters()
		if len(dead) != 1 {
			t.Fatalf("dead letters = %d, want 1", len(dead))
		}
		wantDeadLetter(t, dead[0], body, worker.ReasonNotBeforeTooFar, 0)
	})
}

func TestNoJobStartsTooCloseToTheDeadline(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	body := encode(t, job("late", "GET", "/api/v2/deals", ""))
	e.send(body)
	msgs := e.receive(e.res.JobsQueueURL, 1, 5*time.Second)
	raw, _ := json.Marshal(e.sqsEvent(msgs))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	out, err := e.h.Handle(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(events.SQSEventResponse); len(resp.BatchItemFailures) != 0 {
		t.Errorf("batch item failures = %v, want none (deferred to the next invocation)", resp.BatchItemFailures)
	}
	if d := e.decisionFor("late"); d.Action != string(worker.OutcomeDeferred) || d.Reason != worker.ReasonDeadline {
		t.Errorf("decision = %s (%s), want deferred (deadline)", d.Action, d.Reason)
	}
	if got := e.apiCalls(); len(got) != 0 {
		t.Errorf("simulator answers = %v, want none", got)
	}
}

// TestHungCallEndsInTimeToAnswerTheBatch: Lambda ends the invocation at its deadline, and with
// it the batch's answer for every message. A call still hanging near the deadline must be cut
// early enough for the claim, the visibility change and the answer to happen before it.
func TestHungCallEndsInTimeToAnswerTheBatch(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config) { c.Engine.DeadlineReserve = 4 * time.Second }))
	e.install(pdsim.DefaultUserID)
	e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Hang: true})
	body := encode(t, job("hung", "GET", "/api/v2/deals", ""))
	e.send(body)
	msgs := e.receive(e.res.JobsQueueURL, 1, 5*time.Second)
	raw, _ := json.Marshal(e.sqsEvent(msgs))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	dl, _ := ctx.Deadline()
	out, err := e.h.Handle(ctx, raw)
	left := time.Until(dl)
	if err != nil {
		t.Fatal(err)
	}
	if left < time.Second {
		t.Errorf("Handle returned %v before the invocation's deadline, want at least 1 s left for the batch answer", left.Round(time.Millisecond))
	}
	if resp := out.(events.SQSEventResponse); len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != *msgs[0].MessageId {
		t.Errorf("batch item failures = %v, want the message", resp.BatchItemFailures)
	}
	if d := e.decisionFor("hung"); d.Action != string(worker.OutcomeRetry) || d.Reason != "timeout" {
		t.Errorf("decision = %s (%s), want retry (timeout)", d.Action, d.Reason)
	}
	if _, err := e.store.ClaimWork(t.Context(), worker.ClaimKey("apicall", job("hung", "GET", "/api/v2/deals", "")), "next-delivery", time.Minute, time.Hour); err != nil {
		t.Errorf("ClaimWork after the timed-out run = %v, want the claim released", err)
	}
}

// undelayedQueue plays the jobs queue's delays by the test's clock: the copies the worker
// re-sends to defer a job are recorded (their delays) and sent without delay, so the test
// receives them at once.
type undelayedQueue struct {
	worker.Queue
	jobsQueueURL string
	mu           sync.Mutex
	delays       []int32
}

// undelayed puts an undelayedQueue under the handler's Queue.
func (e *env) undelayed() *undelayedQueue {
	q := &undelayedQueue{Queue: e.queue.Queue, jobsQueueURL: e.res.JobsQueueURL}
	e.queue.Queue = q
	return q
}

func (q *undelayedQueue) SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if aws.ToString(in.QueueUrl) != q.jobsQueueURL {
		return q.Queue.SendMessage(ctx, in, optFns...)
	}
	q.mu.Lock()
	q.delays = append(q.delays, in.DelaySeconds)
	q.mu.Unlock()
	now := *in
	now.DelaySeconds = 0
	return q.Queue.SendMessage(ctx, &now, optFns...)
}

// sent returns the delays of the copies re-sent since the last call.
func (q *undelayedQueue) sent() []int32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	d := q.delays
	q.delays = nil
	return d
}

// TestRefreshLeaseHeldDefersWithoutSpendingAttempts: while another process holds the refresh
// lease of an installation whose token has expired, its job is deferred more times than the
// queue's maxReceiveCount, never calling Pipedrive and never spending an attempt; once the
// lease ends the job refreshes and runs at its first attempt.
func TestRefreshLeaseHeldDefersWithoutSpendingAttempts(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	q := e.undelayed()
	e.clock.Advance(2 * time.Hour)
	const lease = time.Minute
	if _, err := e.store.Lease(t.Context(), acme, "crashed-refresher", lease); err != nil {
		t.Fatal(err)
	}
	body := encode(t, job("lease-held", "GET", "/api/v2/deals", ""))
	e.send(body)
	rounds := e.res.MaxReceiveCount + 1
	for i := 1; i <= rounds; i++ {
		msgs := e.receive(e.res.JobsQueueURL, 1, 5*time.Second)
		if len(msgs) != 1 || aws.ToString(msgs[0].Body) != body {
			t.Fatalf("round %d: received %d messages, want the job", i, len(msgs))
		}
		if got := msgs[0].Attributes["ApproximateReceiveCount"]; got != "1" {
			t.Errorf("round %d: receive count = %s, want 1 (each copy is a new message)", i, got)
		}
		if got, want := attr(msgs[0], "deferrals"), strconv.Itoa(i-1); i > 1 && got != want {
			t.Errorf("round %d: deferrals attribute = %q, want %s", i, got, want)
		}
		if got := attr(msgs[0], "earlier_attempts"); got != "" {
			t.Errorf("round %d: earlier_attempts attribute = %q, want none (no attempt yet)", i, got)
		}
		if failed := e.handleSQS(e.sqsEvent(msgs)); len(failed) != 0 {
			t.Fatalf("round %d: batch item failures = %v, want none (deferred)", i, failed)
		}
		// Acknowledged, as Lambda's poller deletes a batch without failures: left on the
		// queue, a copy would come back after the visibility timeout, which a slow run of
		// the rounds on a loaded machine can outlast.
		e.ack(msgs...)
		if d := e.decisionFor("lease-held"); d.Action != string(worker.OutcomeDeferred) || d.Reason != pdwork.ReasonRefreshInProgress {
			t.Fatalf("round %d: decision = %s (%s), want deferred (refresh_in_progress)", i, d.Action, d.Reason)
		}
		if delays := q.sent(); len(delays) != 1 || delays[0] != int32(worker.CeilSeconds(pdwork.DefaultRefreshBusyDelay)) {
			t.Errorf("round %d: copies re-sent with delays %v, want one of %v", i, delays, pdwork.DefaultRefreshBusyDelay)
		}
	}
	if got := e.apiCalls(); len(got) != 0 {
		t.Errorf("simulator answers while the lease was held = %v, want none", got)
	}

	e.clock.Advance(lease) // the holder never came back: its lease ends
	msgs := e.receive(e.res.JobsQueueURL, 1, 5*time.Second)
	if len(msgs) != 1 || attr(msgs[0], "deferrals") != strconv.Itoa(rounds) || attr(msgs[0], "earlier_attempts") != "" {
		t.Fatalf("the last copy: %d messages, deferrals %q earlier_attempts %q; want one with %d deferrals and no attempt", len(msgs), attr(msgs[0], "deferrals"), attr(msgs[0], "earlier_attempts"), rounds)
	}
	if failed := e.handleSQS(e.sqsEvent(msgs)); len(failed) != 0 {
		t.Errorf("batch item failures after the lease = %v, want none", failed)
	}
	if d := e.decisionFor("lease-held"); d.Action != string(worker.OutcomeSucceeded) || d.ReceiveCount != 1 {
		t.Errorf("decision after the lease = %s at receive %d, want succeeded at its first attempt", d.Action, d.ReceiveCount)
	}
	if got := e.apiCalls(); !maps.Equal(got, map[int]int{200: 1}) {
		t.Errorf("simulator answers = %v, want one 200", got)
	}
	if got := e.refreshes(); got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
	if dead := e.deadLetters(); len(dead) != 0 {
		t.Errorf("dead letters = %d, want none", len(dead))
	}
}
