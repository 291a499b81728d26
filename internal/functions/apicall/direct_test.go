package apicall

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

func TestDirectInvokeReturnsTheResult(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	for _, title := range []string{"Deal one", "Deal two"} {
		e.direct(encode(t, job("seed-"+strings.ReplaceAll(title, " ", "-"), "POST", "/api/v2/deals", `{"title":"`+title+`"}`)))
	}
	payload, err := os.ReadFile("testdata/job_deals.json")
	if err != nil {
		t.Fatal(err)
	}
	res := e.direct(string(payload))
	if res.JobID != "api_call:3408256:5206648:list-deals-1" || res.Kind != jobs.KindAPICall || res.Outcome != worker.OutcomeSucceeded || res.Reason != "ok" || res.Status != 200 {
		t.Errorf("Result = %+v, want succeeded 200 for the fixture's job", res)
	}
	enc, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]any
	_ = json.Unmarshal(enc, &shape)
	for _, k := range []string{"job_id", "kind", "outcome", "reason", "status"} {
		if _, ok := shape[k]; !ok {
			t.Errorf("Result JSON %s lacks %q", enc, k)
		}
	}
	// The outcome, never Pipedrive's answer: invoking the worker must not read a customer's CRM.
	if _, ok := shape["body"]; ok || strings.Contains(string(enc), "Deal two") {
		t.Errorf("Result JSON %s carries Pipedrive's body", enc)
	}

	again := e.direct(string(payload))
	if again.Outcome != worker.OutcomeDuplicate {
		t.Errorf("second invoke = %s, want duplicate", again.Outcome)
	}
	if got := e.sim.Counters().APIByRoute["GET /api/v2/deals"]; got != 1 {
		t.Errorf("GET /api/v2/deals calls = %d, want 1", got)
	}
}

func TestDirectInvokeOutcomes(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 429, Header: http.Header{"Retry-After": {"7"}}})

	t.Run("retry: comes back at once with the wait", func(t *testing.T) {
		res := e.direct(encode(t, job("d-429", "GET", "/api/v2/deals", "")))
		if res.Outcome != worker.OutcomeRetry || res.Reason != "rate_limited" || res.Status != 429 || res.RetryAfter != 7*time.Second || res.Message != pdsim.MsgRequestOverLimit {
			t.Errorf("Result = %+v, want retry (rate_limited) 429 after 7 s with Pipedrive's message", res)
		}
		if enc, _ := json.Marshal(res); !strings.Contains(string(enc), `"retry_after_seconds":7`) {
			t.Errorf("Result JSON = %s, want retry_after_seconds 7", enc)
		}
		if got := e.receive(e.res.JobsQueueURL, 1, 0); len(got) != 0 {
			t.Errorf("jobs queue holds %d messages, want none: a direct caller retries itself", len(got))
		}
	})
	t.Run("dead letter: also parked in the dead-letter queue", func(t *testing.T) {
		payload := encode(t, job("d-404", "GET", "/api/v2/deals/31337", ""))
		res := e.direct(payload)
		if res.Outcome != worker.OutcomeDeadLettered || res.Reason != "not_found" || res.Status != 404 {
			t.Errorf("Result = %+v, want dead_lettered (not_found) 404", res)
		}
		dead := e.deadLetters()
		if len(dead) != 1 {
			t.Fatalf("dead letters = %d, want 1", len(dead))
		}
		wantDeadLetter(t, dead[0], payload, "not_found", 404)
	})
	t.Run("succeeded: the status, not the body", func(t *testing.T) {
		res := e.direct(encode(t, job("d-me", "GET", "/api/v1/users/me", "")))
		if res.Outcome != worker.OutcomeSucceeded || res.Status != 200 || res.Body != nil {
			t.Errorf("Result = %s %d body %d bytes, want succeeded 200 without Pipedrive's body", res.Outcome, res.Status, len(res.Body))
		}
	})
	t.Run("not before: deferred, not run", func(t *testing.T) {
		j := job("d-later", "GET", "/api/v2/deals", "")
		j.NotBefore = t0.Add(time.Minute)
		res := e.direct(encode(t, j))
		if res.Outcome != worker.OutcomeDeferred || res.RetryAfter != time.Minute {
			t.Errorf("Result = %+v, want deferred for a minute", res)
		}
	})
	if got := e.apiCalls(); !maps.Equal(got, map[int]int{429: 1, 404: 1, 200: 1}) {
		t.Errorf("simulator answers = %v, want one 429, one 404 and one 200", got)
	}
}

func TestDirectInvokeRejectsWhatIsNotAJob(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	tests := []struct {
		name, payload string
	}{
		{"not JSON", `hello`},
		{"JSON array", `[{"id":"x"}]`},
		{"empty object", `{}`},
		{"api_call without method", `{"id":"x","kind":"api_call","company_id":3408256,"user_id":5206648,"path":"/api/v2/deals"}`},
		{"full URL as path", `{"id":"x","kind":"api_call","company_id":3408256,"user_id":5206648,"method":"GET","path":"https://evil.example/api/v2/deals"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.h.Handle(t.Context(), json.RawMessage(tt.payload))
			var ije *worker.InvalidJobError
			if !errors.As(err, &ije) || !errors.Is(err, jobs.ErrInvalidJob) || out != nil {
				t.Fatalf("Handle(%s) = %v, %v; want nil and a *worker.InvalidJobError wrapping jobs.ErrInvalidJob", tt.payload, out, err)
			}
			if !strings.HasPrefix(err.Error(), "apicall: jobs: invalid job") {
				t.Errorf("error = %q, want it to start with apicall: jobs: invalid job", err)
			}
		})
	}
	t.Run("malformed SQS event", func(t *testing.T) {
		if _, err := e.h.Handle(t.Context(), json.RawMessage(`{"Records":"nope"}`)); err == nil || !strings.Contains(err.Error(), "malformed SQS event") {
			t.Errorf("Handle(bad Records) error = %v, want malformed SQS event", err)
		}
	})
	if got := e.deadLetters(); len(got) != 0 {
		t.Errorf("dead letters = %d, want none: the direct caller has the payload", len(got))
	}
	if got := e.apiCalls(); len(got) != 0 {
		t.Errorf("simulator answers = %v, want none", got)
	}
}

// TestDirectInvokeThroughTheRuntimeShape passes the payload the way the Lambda runtime does
// (bytes into json.RawMessage) and checks the JSON the caller receives.
func TestDirectInvokeThroughTheRuntimeShape(t *testing.T) {
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	out, err := e.h.Handle(t.Context(), json.RawMessage(encode(t, job("shape", "GET", "/api/v1/deals/timeline", ""))))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(enc, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"job_id": "shape", "kind": "api_call", "outcome": "dead_lettered", "reason": "resource_gone", "status": float64(410), "message": "Gone"}
	if !maps.Equal(got, want) {
		t.Errorf("response JSON = %s, want %v", enc, want)
	}
	if dead := e.deadLetters(); len(dead) != 1 || attr(dead[0], "job_id") != "shape" || aws.ToString(dead[0].Body) == "" {
		t.Errorf("dead letters = %d, want the job", len(dead))
	}
}

// TestDirectInvokeRefusedByDefault: with the template's default (WorkerDirectInvoke=false) a
// direct invocation runs nothing, calls nothing and says how to send a job instead.
func TestDirectInvokeRefusedByDefault(t *testing.T) {
	e := newEnv(t)
	fenv := e.res.FunctionEnv("ApiCallFunction")
	def, err := configFromEnv(func(k string) string { return fenv[k] })
	if err != nil {
		t.Fatal(err)
	}
	e.h.DirectInvoke = def.DirectInvoke
	e.install(pdsim.DefaultUserID)
	out, err := e.h.Handle(t.Context(), json.RawMessage(encode(t, job("d-refused", "POST", "/api/v2/deals", `{"title":"x"}`))))
	var off *DirectInvokeOffError
	if !errors.As(err, &off) || out != nil || !strings.Contains(err.Error(), "jobs queue") {
		t.Fatalf("Handle(direct job) = %v, %v; want a *DirectInvokeOffError pointing to the jobs queue", out, err)
	}
	if got := e.apiCalls(); len(got) != 0 {
		t.Errorf("simulator answers = %v, want none", got)
	}
	if got := e.deadLetters(); len(got) != 0 {
		t.Errorf("dead letters = %d, want none", len(got))
	}
	// The jobs queue still runs jobs.
	if _, failed := e.deliver(encode(t, job("q-ok", "GET", "/api/v2/deals", ""))); len(failed) != 0 {
		t.Errorf("SQS delivery failed: %v", failed)
	}
}

// TestPathOutsideTheAllowListIsDeadLettered: with ApiCallPathPrefixes set, a job for another
// path (or one that only starts with the same letters) is dead-lettered with path_not_allowed and an
// alert, and Pipedrive is never called; a path inside runs.
func TestPathOutsideTheAllowListIsDeadLettered(t *testing.T) {
	e := newEnv(t, withConfig(func(c *config) { c.PathPrefixes = []string{"/api/v2/deals"} }))
	e.install(pdsim.DefaultUserID)
	outside := encode(t, job("evil-hook", "POST", "/api/v1/webhooks", `{"subscription_url":"https://attacker.example/x","event_action":"*","event_object":"*"}`))
	lookalike := encode(t, job("lookalike", "GET", "/api/v2/dealsfields", ""))
	_, failed := e.deliver(outside, lookalike)
	if len(failed) != 0 {
		t.Errorf("failed = %v, want both dead-lettered and acknowledged", failed)
	}
	dead := e.deadLetters()
	if len(dead) != 2 {
		t.Fatalf("dead letters = %d, want 2", len(dead))
	}
	for _, m := range dead {
		if got := attr(m, "reason"); got != "path_not_allowed" {
			t.Errorf("dead letter %s reason = %q, want path_not_allowed", attr(m, "job_id"), got)
		}
	}
	if got := e.apiCalls(); len(got) != 0 {
		t.Errorf("simulator answers = %v, want none: nothing outside the list reaches Pipedrive", got)
	}
	if got := e.alertReasons(); len(got) == 0 || got[0] != "path_not_allowed" {
		t.Errorf("alerts = %v, want path_not_allowed", got)
	}
	if _, failed := e.deliver(encode(t, job("inside", "GET", "/api/v2/deals?limit=5", ""))); len(failed) != 0 || e.decisionFor("inside").Action != "succeeded" {
		t.Errorf("a job inside the list = failed %v, decision %+v; want it run", failed, e.decisionFor("inside"))
	}
}
