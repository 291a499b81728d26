package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// Demo walks one installation through its life against the running stack, the way a
// Pipedrive user and Pipedrive itself would, and checks each step:
//
//  1. GET /oauth/install redirects to the simulator's authorize page with a signed state;
//  2. the simulated user approves and is sent back to /oauth/callback with a code;
//  3. the callback function exchanges the code, learns who installed, stores the
//     installation, and shows the success page;
//  4. a reload of the callback page succeeds without a second code exchange;
//  5. a scheduled refresher run finds nothing due;
//  6. an operator's forced refresher run replaces the tokens;
//  7. the worker, invoked directly, creates a deal;
//  8. the worker, under a 429, answers "retry" at the time Pipedrive asked for;
//  9. a colleague of the installing user creates a deal at Pipedrive: the simulator delivers
//     the v2 webhook of the installing user (its owner; with that installation's own Basic credentials) to the receiver, which
//     routes it to the owner's installation and enqueues it; the worker runs the example app,
//     which adds a note to the colleague's deal through the API;
//  10. Pipedrive delivers the same event three more times at once: nothing changes, the deal
//     still has one note;
//  11. the receiver goes down (503): a deal created meanwhile is not delivered, and after three
//     days of failures (fast-forwarded in the simulator) Pipedrive deletes the deal webhook;
//  12. the receiver is back; the daily webhook check (the check_webhooks job the refresher
//     queues once a day, run now) re-creates the webhook and queues a catch-up, which lists
//     the deals changed since the last processed event: the missed deal gets its note;
//  13. Pipedrive's uninstall request (DELETE /oauth/callback with Basic auth) drops the tokens.
//
// In between, the worker takes the callback's register_webhooks job off the jobs queue.
//
// It writes one line per step to out and returns an error at the first unexpected answer.
func (st *Stack) Demo(ctx context.Context, out io.Writer) error {
	client := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	step := func(format string, args ...any) { fmt.Fprintf(out, "  "+format+"\n", args...) }
	fmt.Fprintf(out, "install flow against %s (simulated Pipedrive at %s)\n", st.GatewayURL, st.SimulatorURL)

	// 1. Install link.
	resp, _, err := get(ctx, client, st.GatewayURL+"/oauth/install")
	if err != nil {
		return err
	}
	authorize, err := expectRedirect(resp, st.SimulatorURL+"/oauth/authorize")
	if err != nil {
		return fmt.Errorf("GET /oauth/install: %w", err)
	}
	if authorize.Query().Get("state") == "" {
		return fmt.Errorf("GET /oauth/install: authorize URL has no state")
	}
	step("1. GET /oauth/install -> %d, to Pipedrive's authorize page with a signed state", resp.StatusCode)

	// 2. The user approves.
	resp, _, err = get(ctx, client, authorize.String())
	if err != nil {
		return err
	}
	callback, err := expectRedirect(resp, st.GatewayURL+"/oauth/callback")
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	if callback.Query().Get("code") == "" {
		return fmt.Errorf("authorize: callback URL has no code")
	}
	step("2. user approves -> %d, back to /oauth/callback with a code", resp.StatusCode)

	// 3. The callback.
	before := st.Simulator.Counters()
	resp, body, err := get(ctx, client, callback.String())
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /oauth/callback = %d, want 200: %.300s", resp.StatusCode, body)
	}
	id := tokenstore.InstallationID{CompanyID: DemoCompanyID, UserID: DemoUserID}
	inst, err := st.Store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("read installation %s: %w", id, err)
	}
	if inst.Status != tokenstore.StatusActive || inst.AccessToken == "" || inst.RefreshToken == "" {
		return fmt.Errorf("installation %s = %v, want active with tokens", id, inst)
	}
	step("3. callback -> %d; stored %s: status=%s version=%d api_domain=%s scopes=%s expires_in=%s",
		resp.StatusCode, id, inst.Status, inst.Version, inst.APIDomain, strings.Join(inst.Scopes, ","),
		time.Until(inst.ExpiresAt).Round(time.Second))
	// The worker picks the register_webhooks job off the queue (through the SQS poller).
	// It registers one webhook per WEBHOOK_EVENTS entry of the worker's template environment.
	want := 0
	for id := range st.Resources.FunctionEnvs {
		if raw, ok := st.Resources.FunctionEnv(id)["WEBHOOK_EVENTS"]; ok {
			events, err := pdwork.ParseWebhookEvents(raw)
			if err != nil {
				return fmt.Errorf("%s: WEBHOOK_EVENTS: %w", id, err)
			}
			want = len(events)
		}
	}
	var hooks int
	for deadline := time.Now().Add(20 * time.Second); ; {
		if hooks = len(st.Simulator.Webhooks(DemoUserID)); (hooks > 0 && hooks >= want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if hooks == 0 || hooks < want {
		return fmt.Errorf("worker: %d of %d webhooks registered at the simulator 20 s after the install", hooks, want)
	}
	step("   worker took the register_webhooks job off the queue -> %d webhooks registered at Pipedrive", hooks)

	// 4. Reload.
	resp, body, err = get(ctx, client, callback.String())
	if err != nil {
		return err
	}
	exchanges := st.Simulator.Counters().TokenByGrant["authorization_code"] - before.TokenByGrant["authorization_code"]
	if resp.StatusCode != http.StatusOK || exchanges != 1 {
		return fmt.Errorf("reload callback = %d with %d code exchanges, want 200 with 1: %.300s", resp.StatusCode, exchanges, body)
	}
	step("4. reload of the callback page -> %d, still %d code exchange", resp.StatusCode, exchanges)

	// Refresher: a scheduled run finds nothing due (the token is an hour old at most), an
	// operator's forced run replaces the tokens.
	var sum struct {
		Due, Refreshed int
		Outcome        string
	}
	if err := st.Refresher.InvokeJSON(ctx, map[string]any{}, &sum); err != nil {
		return fmt.Errorf("refresher (scheduled): %w", err)
	}
	if sum.Due != 0 {
		return fmt.Errorf("refresher (scheduled) found %d due, want 0 for a fresh install", sum.Due)
	}
	step("5. refresher, scheduled run -> %d due (the token is fresh)", sum.Due)
	if err := st.Refresher.InvokeJSON(ctx, map[string]any{"company_id": id.CompanyID, "user_id": id.UserID, "force": true}, &sum); err != nil {
		return fmt.Errorf("refresher (forced): %w", err)
	}
	after, err := st.Store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("read installation %s: %w", id, err)
	}
	if sum.Outcome != "refreshed" || after.AccessToken == inst.AccessToken || after.Version <= inst.Version {
		return fmt.Errorf("refresher (forced) = %s, version %d -> %d; want refreshed with new tokens", sum.Outcome, inst.Version, after.Version)
	}
	step("6. refresher, forced run for %s -> %s; new access token stored, version %d", id, sum.Outcome, after.Version)

	// The worker invoked directly with one API call, then with a call Pipedrive rate-limits.
	var res struct {
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
		Status  int    `json:"status"`
		After   int    `json:"retry_after_seconds"`
	}
	call := map[string]any{"id": "demo-create-deal", "kind": "api_call", "company_id": id.CompanyID, "user_id": id.UserID,
		"method": "POST", "path": "/api/v2/deals", "body": map[string]any{"title": "Demo deal"}}
	if err := st.Worker.InvokeJSON(ctx, call, &res); err != nil {
		return fmt.Errorf("worker (direct): %w", err)
	}
	if res.Outcome != "succeeded" {
		return fmt.Errorf("worker POST /api/v2/deals = %+v, want succeeded", res)
	}
	step("7. worker, direct invoke POST /api/v2/deals -> %s (%d)", res.Outcome, res.Status)
	fault := st.Simulator.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: http.StatusTooManyRequests, Times: 1,
		Header: http.Header{"Retry-After": {"7"}}})
	defer st.Simulator.RemoveFault(fault)
	call["id"], call["method"], call["body"] = "demo-list-deals", "GET", nil
	if err := st.Worker.InvokeJSON(ctx, call, &res); err != nil {
		return fmt.Errorf("worker (direct, rate limited): %w", err)
	}
	if res.Outcome != "retry" || res.After < 7 {
		return fmt.Errorf("worker GET /api/v2/deals under a 429 = %+v, want retry after 7 s", res)
	}
	step("8. worker, same call while Pipedrive answers 429 Retry-After: 7 -> %s in %d s (%s)", res.Outcome, res.After, res.Reason)

	// Webhooks: a user creates a deal; the example app notes it once, however often the
	// event is delivered.
	if err := st.webhookSteps(ctx, step); err != nil {
		return err
	}
	// A webhook Pipedrive deleted after days of failures: re-created, and what it missed caught up.
	if err := st.healthSteps(ctx, step, id); err != nil {
		return err
	}

	// Uninstall.
	status, err := st.Simulator.Uninstall(ctx, st.GatewayURL+"/oauth/callback", DemoUserID)
	if err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	inst, err = st.Store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("read installation %s: %w", id, err)
	}
	if status != http.StatusOK || inst.Status != tokenstore.StatusUninstalled || inst.AccessToken != "" || inst.RefreshToken != "" {
		return fmt.Errorf("uninstall = %d, installation %v; want 200, uninstalled without tokens", status, inst)
	}
	step("13. Pipedrive's uninstall request -> %d; %s is %s, tokens dropped", status, id, inst.Status)
	fmt.Fprintln(out, "ok")
	return nil
}

func get(ctx context.Context, c *http.Client, u string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", redact(u), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(b), nil
}

// expectRedirect checks resp is a 302 to a URL that starts with prefix, and returns it.
func expectRedirect(resp *http.Response, prefix string) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, prefix) {
		return nil, fmt.Errorf("answer %d to %q, want 302 to %s…", resp.StatusCode, redact(loc), prefix)
	}
	return url.Parse(loc)
}

// redact drops the query string (codes and states) from a URL before it is printed.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// webhookSteps are steps 9 and 10: the loop from a change at Pipedrive to the app's API call.
func (st *Stack) webhookSteps(ctx context.Context, step func(string, ...any)) error {
	st.Simulator.ClearDeliveries()
	ev, _, err := st.Simulator.ActAsUser(pdsim.UserAction{UserID: DemoColleagueID, Object: "deal", Action: "create",
		Fields: map[string]any{"title": "Webhook demo deal"}})
	if err != nil {
		return fmt.Errorf("user creates a deal: %w", err)
	}
	if err := st.Simulator.WaitDeliveries(ctx); err != nil {
		return fmt.Errorf("webhook delivery: %w", err)
	}
	var first []string
	for _, d := range st.Simulator.Deliveries() {
		if d.EventID == ev.ID {
			first = append(first, fmt.Sprintf("%d (v2 payload, Basic auth)", d.Status))
			if d.Status != http.StatusOK || !d.BasicAuth {
				return fmt.Errorf("webhook delivery of deal %d = %d %s (basic auth %t), want 200 with Basic auth", ev.EntityID, d.Status, d.Outcome, d.BasicAuth)
			}
		}
	}
	if len(first) == 0 {
		return fmt.Errorf("no webhook delivery for the new deal %d: is a deal webhook registered?", ev.EntityID)
	}
	var notes []note
	for deadline := time.Now().Add(20 * time.Second); len(notes) == 0; time.Sleep(100 * time.Millisecond) {
		if notes, err = st.dealNotes(ctx, ev.EntityID); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("worker: no note on deal %d 20 s after the webhook was accepted", ev.EntityID)
		}
	}
	step("9. colleague %d creates deal %d at Pipedrive -> installing user %d's webhook answered %s -> receiver (owner %d:%d) -> jobs queue -> worker -> example app",
		DemoColleagueID, ev.EntityID, DemoUserID, strings.Join(first, ", "), DemoCompanyID, DemoUserID)
	step("   -> note %d on deal %d: %q", notes[0].ID, ev.EntityID, notes[0].Content)

	copies, err := st.Simulator.Redeliver(ctx, ev.ID, pdsim.RedeliverOptions{Times: 3, Concurrent: true})
	if err != nil {
		return fmt.Errorf("redeliver: %w", err)
	}
	var statuses []string
	for _, d := range copies {
		statuses = append(statuses, fmt.Sprint(d.Status))
		if d.Status != http.StatusOK {
			return fmt.Errorf("duplicate delivery = %d %s, want 200", d.Status, d.Outcome)
		}
	}
	// Give a wrongly enqueued copy time to reach the worker and add a note.
	time.Sleep(2 * time.Second)
	if notes, err = st.dealNotes(ctx, ev.EntityID); err != nil {
		return err
	}
	if len(notes) != 1 {
		return fmt.Errorf("deal %d has %d notes after duplicate deliveries, want 1", ev.EntityID, len(notes))
	}
	step("10. Pipedrive delivers the same event %d more times at once -> %s (duplicates); deal %d still has %d note",
		len(copies), strings.Join(statuses, ", "), ev.EntityID, len(notes))
	return nil
}

// healthSteps are steps 11 and 12: a receiver outage long enough for Pipedrive to delete the
// deal webhook, then the health check that re-creates it and catches up the missed deal.
func (st *Stack) healthSteps(ctx context.Context, step func(string, ...any), id tokenstore.InstallationID) error {
	var hook pdsim.Webhook
	for _, h := range st.Simulator.Webhooks(DemoUserID) {
		if h.EventObject == "deal" {
			hook = h
		}
	}
	if hook.ID == 0 {
		return fmt.Errorf("no deal webhook registered for user %d", DemoUserID)
	}
	st.ReceiverOutage(true)
	defer st.ReceiverOutage(false)
	ev, _, err := st.Simulator.ActAsUser(pdsim.UserAction{UserID: DemoColleagueID, Object: "deal", Action: "create",
		Fields: map[string]any{"title": "Deal during the outage"}})
	if err != nil {
		return fmt.Errorf("user creates a deal: %w", err)
	}
	if err := st.Simulator.WaitDeliveries(ctx); err != nil {
		return fmt.Errorf("webhook delivery: %w", err)
	}
	status := 0
	for _, d := range st.Simulator.Deliveries() {
		if d.EventID == ev.ID {
			status = d.Status
		}
	}
	if status != http.StatusServiceUnavailable {
		return fmt.Errorf("delivery of deal %d during the outage = %d, want 503", ev.EntityID, status)
	}
	// Three days of failed retries, in an instant: Pipedrive deletes the webhook.
	if err := st.Simulator.AgeFailures(hook.ID, pdsim.WebhookDeleteAfter); err != nil {
		return err
	}
	st.Simulator.DeliverDue(ctx)
	for _, h := range st.Simulator.Webhooks(DemoUserID) {
		if h.ID == hook.ID {
			return fmt.Errorf("webhook %d still exists after 3 days of failures", hook.ID)
		}
	}
	step("11. receiver down (503): colleague creates deal %d -> delivery failed; 3 days of failures later Pipedrive deleted webhook %d",
		ev.EntityID, hook.ID)

	st.ReceiverOutage(false)
	// The check the refresher queues once a day, invoked now (its own run id, so the day's
	// scheduled check, if it already ran, does not make this one a duplicate).
	check := jobs.CheckWebhooks(id, "walkthrough-"+time.Now().UTC().Format("20060102T150405Z"))
	var res struct {
		Outcome string          `json:"outcome"`
		Reason  string          `json:"reason"`
		Body    json.RawMessage `json:"body"`
	}
	if err := st.Worker.InvokeJSON(ctx, check, &res); err != nil {
		return fmt.Errorf("worker (check_webhooks): %w", err)
	}
	var sum pdwork.CheckSummary
	if err := json.Unmarshal(res.Body, &sum); err != nil || res.Reason != pdwork.ReasonWebhooksRepaired || len(sum.Created) != 1 || sum.CatchUpJob == "" {
		return fmt.Errorf("check_webhooks = %s %s %s, want webhooks_repaired with one webhook created and a catch-up queued", res.Outcome, res.Reason, res.Body)
	}
	var notes []note
	for deadline := time.Now().Add(pdwork.CatchUpDelay + 30*time.Second); len(notes) == 0; time.Sleep(200 * time.Millisecond) {
		if notes, err = st.dealNotes(ctx, ev.EntityID); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("catch-up: no note on the missed deal %d %s after the check", ev.EntityID, pdwork.CatchUpDelay+30*time.Second)
		}
	}
	step("12. daily webhook check -> %s (lost: %s): webhook %d created, catch-up queued -> worker lists deals changed since the last event -> deal %d (catch-up) -> note %q",
		res.Reason, sum.Lost, sum.Created[0].ID, ev.EntityID, notes[0].Content)
	return nil
}

// note is a note as the simulator's API lists it.
type note struct {
	ID      int64  `json:"id"`
	Content string `json:"content"`
}

// dealNotes lists deal dealID's notes through the simulator's API, with a token of its own.
func (st *Stack) dealNotes(ctx context.Context, dealID int64) ([]note, error) {
	tok, err := st.Simulator.IssueToken(DemoUserID)
	if err != nil {
		return nil, fmt.Errorf("list notes: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v1/notes?deal_id=%d", tok.APIDomain, dealID), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list notes: %w", err)
	}
	defer resp.Body.Close()
	var page struct {
		Data []note `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list notes of deal %d: status %d, %v", dealID, resp.StatusCode, err)
	}
	return page.Data, nil
}
