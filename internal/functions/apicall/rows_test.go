package apicall

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// useWindow spends one request of the installation's rate window and daily budget.
func (e *env) useWindow() {
	e.t.Helper()
	in, err := e.store.Get(e.t.Context(), acme)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := (&pdapi.Client{HTTP: e.sim.HTTP.Client()}).Me(context.Background(), in.APIDomain, in.AccessToken); err != nil {
		e.t.Fatalf("Me() = %v", err)
	}
}

// TestAPIStatusRows runs one job through the jobs queue for each row of the API table of
// Pipedrive's status-code page (and the 429 variants), triggered naturally by the simulator
// where it can and by an injected answer where it cannot, and checks what the worker did:
// the decision, the batch answer, the dead-letter queue, the alerts and the calls Pipedrive saw.
func TestAPIStatusRows(t *testing.T) {
	htmlBlock := "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>blocked</body></html>"
	tests := []struct {
		name      string
		opts      []option
		setup     func(e *env)
		job       jobs.Job
		action    worker.Outcome
		reason    string
		status    int
		retry     time.Duration // logged retry delay (the message's new visibility)
		alerts    []string
		calls     map[int]int // simulator answers by status
		refreshes int
	}{
		{name: "200 OK", job: job("r200", "GET", "/api/v2/deals", ""),
			action: worker.OutcomeSucceeded, reason: "ok", status: 200, calls: map[int]int{200: 1}},
		// Notes are v1 only (Pipedrive has no v2 notes); their create still answers 201.
		{name: "201 Created", job: job("r201", "POST", "/api/v1/notes", `{"content":"From a job","lead_id":"adf21080-0e10-11eb-879b-05d71fb426ec"}`),
			action: worker.OutcomeSucceeded, reason: "ok", status: 201, calls: map[int]int{201: 1}},
		{name: "204 No Content",
			setup:  func(e *env) { e.sim.Inject(pdsim.Fault{Method: "DELETE", Path: "/api/v2/deals/1", Status: 204}) },
			job:    job("r204", "DELETE", "/api/v2/deals/1", ""),
			action: worker.OutcomeSucceeded, reason: "ok", status: 204, calls: map[int]int{204: 1}},
		{name: "400 malformed authorization header",
			setup: func(e *env) {
				e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 400, Body: `{"success":false,"error":"` + pdsim.MsgMalformedAuthHeader + `","error_info":"` + pdsim.ErrorInfo + `","data":null}`})
			},
			job:    job("r400a", "GET", "/api/v2/deals", ""),
			action: worker.OutcomeDeadLettered, reason: "malformed_authorization_header", status: 400,
			alerts: []string{"malformed_authorization_header"}, calls: map[int]int{400: 1}},
		{name: "400 other: invalid data", job: job("r400b", "POST", "/api/v2/deals", `{"value":10}`),
			action: worker.OutcomeDeadLettered, reason: "bad_request", status: 400, calls: map[int]int{400: 1}},
		{name: "401 then refresh and success",
			setup:  func(e *env) { e.sim.ExpireAccessTokens(pdsim.DefaultUserID) },
			job:    job("r401a", "GET", "/api/v2/deals", ""),
			action: worker.OutcomeSucceeded, reason: "ok", status: 200, calls: map[int]int{401: 1, 200: 1}, refreshes: 1},
		{name: "401 twice",
			setup:  func(e *env) { e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 401, Times: 2}) },
			job:    job("r401b", "GET", "/api/v2/deals", ""),
			action: worker.OutcomeDeadLettered, reason: pdwork.ReasonUnauthorizedAfterRefresh, status: 401,
			alerts: []string{pdwork.ReasonUnauthorizedAfterRefresh}, calls: map[int]int{401: 2}, refreshes: 1},
		{name: "403 scope and URL mismatch", opts: []option{withSim(func(c *pdsim.Config) { c.Scopes = []string{"base"} })},
			job:    job("r403a", "GET", "/api/v2/deals", ""),
			action: worker.OutcomeDeadLettered, reason: "scope_mismatch", status: 403, alerts: []string{"scope_mismatch"}, calls: map[int]int{403: 1}},
		{name: "403 HTML page (Cloudflare)",
			setup: func(e *env) {
				e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 403, Body: htmlBlock, Header: http.Header{"Content-Type": {"text/html"}}})
			},
			job:    job("r403b", "GET", "/api/v2/deals", ""),
			action: worker.OutcomeRetry, reason: "blocked_by_edge", status: 403, retry: 30 * time.Second, calls: map[int]int{403: 1}},
		{name: "404 not found", job: job("r404", "GET", "/api/v2/deals/424242", ""),
			action: worker.OutcomeDeadLettered, reason: "not_found", status: 404, calls: map[int]int{404: 1}},
		{name: "410 gone", job: job("r410", "GET", "/api/v1/deals/timeline", ""),
			action: worker.OutcomeDeadLettered, reason: "resource_gone", status: 410, alerts: []string{"resource_gone"}, calls: map[int]int{410: 1}},
		{name: "422 webhooks limit reached", opts: []option{withSim(func(c *pdsim.Config) { c.WebhookLimit = 1 })},
			setup: func(e *env) {
				in, _ := e.store.Get(e.t.Context(), acme)
				if _, err := (&pdapi.Client{}).CreateWebhook(e.t.Context(), in.APIDomain, in.AccessToken, pdapi.NewWebhook{
					SubscriptionURL: "https://other.example/hook", EventObject: "deal", EventAction: "*", Name: "other"}); err != nil {
					e.t.Fatalf("CreateWebhook = %v", err)
				}
			},
			job:    job("r422", "POST", "/api/v1/webhooks", `{"subscription_url":"https://app.example/h","event_object":"person","event_action":"*","name":"p"}`),
			action: worker.OutcomeDeadLettered, reason: "webhook_limit", status: 422, alerts: []string{"webhook_limit"}, calls: map[int]int{422: 1}},
		{name: "429 with Retry-After",
			setup: func(e *env) {
				e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 429, Header: http.Header{"Retry-After": {"7"}}})
			},
			job:    job("r429a", "GET", "/api/v2/deals", ""),
			action: worker.OutcomeRetry, reason: "rate_limited", status: 429, retry: 7 * time.Second, calls: map[int]int{429: 1}},
		{name: "429 with x-ratelimit-reset (rate window spent)", opts: []option{withSim(func(c *pdsim.Config) { c.RateLimit, c.BurstPenalty = 1, -1 })},
			setup:  (*env).useWindow,
			job:    job("r429b", "GET", "/api/v2/deals", ""),
			action: worker.OutcomeRetry, reason: "rate_limited", status: 429, retry: 2 * time.Second, calls: map[int]int{429: 1}},
		{name: "429 with the burst penalty (Retry-After: 10)", opts: []option{withSim(func(c *pdsim.Config) { c.RateLimit = 1 })},
			setup:  (*env).useWindow,
			job:    job("r429p", "GET", "/api/v2/deals", ""),
			action: worker.OutcomeRetry, reason: "rate_limited", status: 429, retry: pdsim.DefaultBurstPenalty, calls: map[int]int{429: 1}},
		{name: "429 daily budget spent", opts: []option{withSim(func(c *pdsim.Config) { c.DailyBudget = 1 })},
			setup: (*env).useWindow,
			job:   job("r429c", "GET", "/api/v2/deals", ""),
			// The company is paused: the job waits a probe interval, re-sent (no receive spent),
			// never after the burst window's x-ratelimit-reset; one alert for the company.
			action: worker.OutcomeDeferred, reason: "daily_budget_exceeded", status: 429, retry: pdwork.DefaultProbeInterval,
			alerts: []string{"daily_budget_exceeded"}, calls: map[int]int{429: 1}},
		{name: "500",
			setup:  func(e *env) { e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 500}) },
			job:    job("r500", "GET", "/api/v2/deals", ""),
			action: worker.OutcomeRetry, reason: "server_error", status: 500, retry: 30 * time.Second, calls: map[int]int{500: 1}},
		// Issue 11, finding 4: a POST whose answer was a 5xx may have created the deal; it is
		// not sent again blindly (one POST at Pipedrive), a person is told.
		{name: "POST answered 500: outcome unknown",
			setup:  func(e *env) { e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 500}) },
			job:    job("r500post", "POST", "/api/v2/deals", `{"title":"x"}`),
			action: worker.OutcomeDeadLettered, reason: pdwork.ReasonOutcomeUnknown, status: 500,
			alerts: []string{pdwork.ReasonOutcomeUnknown}, calls: map[int]int{500: 1}},
		{name: "POST answered 500, retry_safe: retried",
			setup:  func(e *env) { e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 500}) },
			job:    retrySafe(job("r500safe", "POST", "/api/v2/deals", `{"title":"x"}`)),
			action: worker.OutcomeRetry, reason: "server_error", status: 500, retry: 30 * time.Second, calls: map[int]int{500: 1}},
		{name: "POST answered 503: not carried out, retried",
			setup:  func(e *env) { e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 503}) },
			job:    job("r503post", "POST", "/api/v2/deals", `{"title":"x"}`),
			action: worker.OutcomeRetry, reason: "unavailable", status: 503, retry: 30 * time.Second, calls: map[int]int{503: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			e.install(pdsim.DefaultUserID)
			if tt.setup != nil {
				tt.setup(e)
			}
			e.sim.ResetCounters()
			body := encode(t, tt.job)
			msgs, failed := e.deliver(body)

			d := e.decisionFor(tt.job.ID)
			if worker.Outcome(d.Action) != tt.action || d.Reason != tt.reason || d.Status != tt.status {
				t.Errorf("decision = %s (%s) status %d, want %s (%s) status %d", d.Action, d.Reason, d.Status, tt.action, tt.reason, tt.status)
			}
			if d.JobID != tt.job.ID || d.Kind != jobs.KindAPICall || d.CompanyID != acme.CompanyID || d.UserID != acme.UserID || d.MessageID != *msgs[0].MessageId {
				t.Errorf("decision = %+v, want job, kind, ids and message id", d)
			}
			if want := worker.CeilSeconds(tt.retry); d.RetryAfterS != want {
				t.Errorf("decision retry_after_s = %d, want %d", d.RetryAfterS, want)
			}
			wantFailed := []string(nil)
			if tt.action == worker.OutcomeRetry {
				wantFailed = []string{*msgs[0].MessageId}
			}
			if !slices.Equal(failed, wantFailed) {
				t.Errorf("batch item failures = %v, want %v", failed, wantFailed)
			}
			dead := e.deadLetters()
			switch {
			case tt.action == worker.OutcomeDeadLettered && len(dead) == 1:
				wantDeadLetter(t, dead[0], body, tt.reason, tt.status)
				if attr(dead[0], "job_id") != tt.job.ID || attr(dead[0], "company_id") != "3408256" || attr(dead[0], "user_id") != "5206648" {
					t.Errorf("dead letter attributes job_id %q company_id %q user_id %q, want the job's", attr(dead[0], "job_id"), attr(dead[0], "company_id"), attr(dead[0], "user_id"))
				}
			case tt.action == worker.OutcomeDeadLettered:
				t.Errorf("dead-letter queue holds %d messages, want 1", len(dead))
			case len(dead) != 0:
				t.Errorf("dead-letter queue holds %d messages, want none", len(dead))
			}
			if got := e.alertReasons(); !slices.Equal(got, tt.alerts) {
				t.Errorf("alerts = %v, want %v", got, tt.alerts)
			}
			if got := e.apiCalls(); !maps.Equal(got, tt.calls) {
				t.Errorf("simulator answers by status = %v, want %v", got, tt.calls)
			}
			if got := e.refreshes(); got != tt.refreshes {
				t.Errorf("refreshes = %d, want %d", got, tt.refreshes)
			}
		})
	}
}

// retrySafe marks j as safe to send again when its outcome is unknown.
func retrySafe(j jobs.Job) jobs.Job {
	j.RetrySafe = true
	return j
}
