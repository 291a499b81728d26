package pdsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hit is one webhook request a receiver got.
type hit struct {
	raw         []byte
	body        map[string]any
	user, pass  string
	basic       bool
	contentType string
}

// receiver is a webhook endpoint that records requests and answers answer(n) for the n-th
// (1-based); a negative answer holds the request until the client gives up.
type receiver struct {
	URL    string
	mu     sync.Mutex
	hits   []hit
	answer func(n int) int
}

// newHookReceiver starts a receiver answering 200 unless answer says otherwise.
func newHookReceiver(t *testing.T, answer func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	if rc.answer == nil {
		rc.answer = func(int) int { return 200 }
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("webhook body %q: %v", b, err)
		}
		u, p, ok := r.BasicAuth()
		rc.mu.Lock()
		rc.hits = append(rc.hits, hit{raw: b, body: m, user: u, pass: p, basic: ok, contentType: r.Header.Get("Content-Type")})
		n := len(rc.hits)
		rc.mu.Unlock()
		status := rc.answer(n)
		if status < 0 {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(hs.Close)
	rc.URL = hs.URL
	return rc
}

// got returns the requests so far.
func (rc *receiver) got() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.hits)
}

// hook creates a webhook through the API and returns its id.
func (s *sim) hook(tok, object, action, url string, extra map[string]any) int64 {
	s.t.Helper()
	b := map[string]any{"subscription_url": url, "event_action": action, "event_object": object, "name": object + "." + action}
	for k, v := range extra {
		b[k] = v
	}
	r := s.api("POST", "/api/v1/webhooks", tok, b)
	if r.status != 201 {
		s.t.Fatalf("create webhook %s.%s = %d (%s), want 201", action, object, r.status, r.body)
	}
	return int64(r.json(s.t)["data"].(map[string]any)["id"].(float64))
}

// wait waits for in-flight deliveries.
func (s *sim) wait() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitDeliveries(ctx); err != nil {
		s.t.Fatalf("WaitDeliveries: %v", err)
	}
}

// created calls the API and returns data.id of a successful answer.
func (s *sim) created(method, path, tok string, body any) int64 {
	s.t.Helper()
	r := s.api(method, path, tok, body)
	if r.status != 200 && r.status != 201 {
		s.t.Fatalf("%s %s = %d (%s), want 200/201", method, path, r.status, r.body)
	}
	return int64(r.json(s.t)["data"].(map[string]any)["id"].(float64))
}

// TestWebhookPayloadV2 checks the v2 body of create, change and delete, and the request
// (ids as numbers here: WebhookIDsAsNumbers).
func TestWebhookPayloadV2(t *testing.T) {
	s := newSim(t, Config{WebhookIDsAsNumbers: true})
	tok := s.install().AccessToken
	rc := newHookReceiver(t, nil)
	hookID := s.hook(tok, "deal", "*", rc.URL+"/hooks", map[string]any{"http_auth_user": "pd", "http_auth_password": "s3cret"})
	id := s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "Big", "value": 10})
	s.wait() // one at a time, so the receiver sees them in order
	s.clock.Advance(time.Minute)
	s.api("PATCH", fmt.Sprintf("/api/v2/deals/%d", id), tok, map[string]any{"title": "Bigger"})
	s.wait()
	s.api("DELETE", fmt.Sprintf("/api/v2/deals/%d", id), tok, nil)
	s.wait()

	hits := rc.got()
	if len(hits) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(hits))
	}
	tests := []struct {
		action       string
		time         time.Time
		title        any // data.title; nil when data is null
		previous     map[string]any
		fullPrevious bool
	}{
		{"create", t0, "Big", nil, false},
		{"change", t0.Add(time.Minute), "Bigger", map[string]any{"title": "Big"}, false},
		{"delete", t0.Add(time.Minute), nil, nil, true},
	}
	ids := map[any]bool{}
	for i, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			h := hits[i]
			if !h.basic || h.user != "pd" || h.pass != "s3cret" || h.contentType != "application/json" {
				t.Errorf("request auth %v %q:%q type %q, want Basic pd:s3cret, application/json", h.basic, h.user, h.pass, h.contentType)
			}
			meta := h.body["meta"].(map[string]any)
			want := map[string]any{
				"action": tt.action, "entity": "deal", "entity_id": float64(id), "company_id": float64(DefaultCompanyID),
				"user_id": float64(DefaultUserID), "version": "2.0", "webhook_id": float64(hookID), "attempt": float64(1),
				"host": DefaultCompanyDomain + ".pipedrive.com", "type": "application", "change_source": "api",
				"timestamp": tt.time.Format("2006-01-02T15:04:05.000Z"), "webhook_owner_id": float64(DefaultUserID),
			}
			for k, v := range want {
				if meta[k] != v {
					t.Errorf("meta.%s = %v, want %v", k, meta[k], v)
				}
			}
			if eid, _ := meta["id"].(string); len(eid) != 36 || ids[eid] {
				t.Errorf("meta.id = %v, want a fresh UUID", meta["id"])
			}
			ids[meta["id"]] = true
			if c, _ := meta["correlation_id"].(string); len(c) != 36 {
				t.Errorf("meta.correlation_id = %v, want a UUID", meta["correlation_id"])
			}
			data, _ := h.body["data"].(map[string]any)
			if tt.title == nil && h.body["data"] != nil {
				t.Errorf("data = %v, want null", h.body["data"])
			}
			if tt.title != nil && (data["title"] != tt.title || data["owner_id"] != float64(DefaultUserID) || data["add_time"] != t0.Format(time.RFC3339)) {
				t.Errorf("data = %v, want the v2 deal titled %v", data, tt.title)
			}
			prev, _ := h.body["previous"].(map[string]any)
			switch {
			case tt.fullPrevious:
				if prev["title"] != "Bigger" || prev["id"] != float64(id) {
					t.Errorf("previous = %v, want the deleted deal", h.body["previous"])
				}
			case tt.previous == nil:
				if v, ok := h.body["previous"]; !ok || v != nil {
					t.Errorf("previous = %v (present %v), want null", v, ok)
				}
			default:
				if fmt.Sprint(prev) != fmt.Sprint(tt.previous) {
					t.Errorf("previous = %v, want %v", prev, tt.previous)
				}
			}
		})
	}
}

// TestWebhookIDsAsStrings checks the default string rendering of meta ids (Pipedrive's
// examples), and that the owner is the webhook's while user_id is who made the change.
func TestWebhookIDsAsStrings(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	rc := newHookReceiver(t, nil)
	hookID := s.hook(tok, "person", "create", rc.URL, nil)
	id := s.created("POST", "/api/v2/persons", tok, map[string]any{"name": "Ann Lee"})
	s.wait()
	meta := rc.got()[0].body["meta"].(map[string]any)
	if meta["entity_id"] != fmt.Sprint(id) || meta["webhook_id"] != fmt.Sprint(hookID) || meta["company_id"] != fmt.Sprint(DefaultCompanyID) ||
		meta["webhook_owner_id"] != fmt.Sprint(DefaultUserID) || meta["type"] != "application" {
		t.Errorf("meta = %v, want ids as strings and type application", meta)
	}
}

// TestWebhookPayloadV1 checks the v1 body: event word, current/previous, meta.
func TestWebhookPayloadV1(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	rc := newHookReceiver(t, nil)
	s.hook(tok, "deal", "*", rc.URL, map[string]any{"version": "1.0"})
	id := s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "Old"})
	s.wait()
	s.api("PATCH", fmt.Sprintf("/api/v2/deals/%d", id), tok, map[string]any{"title": "New"})
	s.wait()
	s.api("DELETE", fmt.Sprintf("/api/v2/deals/%d", id), tok, nil)
	s.wait()
	hits := rc.got()
	tests := []struct {
		event, action   string
		current, before any // titles; nil = null
	}{
		{"added.deal", "added", "Old", nil},
		{"updated.deal", "updated", "New", "Old"},
		{"deleted.deal", "deleted", nil, "New"},
	}
	if len(hits) != len(tests) {
		t.Fatalf("receiver got %d requests, want %d", len(hits), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			b := hits[i].body
			meta := b["meta"].(map[string]any)
			if b["v"] != float64(1) || b["event"] != tt.event || b["retry"] != float64(0) {
				t.Errorf("v %v event %v retry %v, want 1 %s 0", b["v"], b["event"], b["retry"], tt.event)
			}
			if meta["action"] != tt.action || meta["object"] != "deal" || meta["id"] != float64(id) ||
				meta["company_id"] != float64(DefaultCompanyID) || meta["timestamp"] != float64(t0.Unix()) {
				t.Errorf("meta = %v, want action %s, object deal, id %d", meta, tt.action, id)
			}
			title := func(v any) any {
				if m, ok := v.(map[string]any); ok {
					return m["title"]
				}
				return v
			}
			if title(b["current"]) != tt.current || title(b["previous"]) != tt.before {
				t.Errorf("current %v previous %v, want titles %v and %v", b["current"], b["previous"], tt.current, tt.before)
			}
			if cur, ok := b["current"].(map[string]any); ok {
				if _, nested := cur["user_id"].(map[string]any); !nested {
					t.Errorf("current.user_id = %v, want the v1 nested user", cur["user_id"])
				}
			}
		})
	}
}

// TestWebhookMatching checks which webhooks an event reaches.
func TestWebhookMatching(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	if err := s.AddUser(User{ID: 77, CompanyID: 88}); err != nil {
		t.Fatal(err)
	}
	rc := newHookReceiver(t, nil)
	tests := []struct {
		object, action string
		want           []string // "action.object" of the events it gets
	}{
		{"deal", "create", []string{"create.deal"}},
		{"deal", "change", []string{"change.deal"}},
		{"deal", "*", []string{"create.deal", "change.deal", "delete.deal"}},
		{"*", "delete", []string{"delete.deal", "delete.note"}},
		{"*", "*", []string{"create.deal", "change.deal", "create.note", "create.person", "delete.deal", "delete.note"}},
		{"deal", "added", []string{"create.deal"}},
		{"deal", "updated", []string{"change.deal"}},
		{"person", "create", []string{"create.person"}},
		{"note", "*", []string{"create.note", "delete.note"}},
		{"deal", "merged", nil},
		{"organization", "*", nil},
		{"lead", "*", nil},
	}
	ids := make([]int64, len(tests))
	for i, tt := range tests {
		ids[i] = s.hook(tok, tt.object, tt.action, rc.URL, nil)
	}
	// Another company's change reaches none of them.
	if _, _, err := s.ActAsUser(UserAction{UserID: 77, Object: "deal", Action: "create", Fields: map[string]any{"title": "Elsewhere"}}); err != nil {
		t.Fatal(err)
	}
	deal := s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "D"})
	s.api("PATCH", fmt.Sprintf("/api/v2/deals/%d", deal), tok, map[string]any{"value": 5})
	noteID := s.created("POST", "/api/v1/notes", tok, map[string]any{"content": "hi", "deal_id": deal})
	s.created("POST", "/api/v2/persons", tok, map[string]any{"name": "P"})
	s.api("DELETE", fmt.Sprintf("/api/v1/notes/%d", noteID), tok, nil)
	s.api("DELETE", fmt.Sprintf("/api/v2/deals/%d", deal), tok, nil)
	s.wait()

	got := map[int64][]string{}
	for _, h := range rc.got() {
		m := h.body["meta"].(map[string]any)
		hid, _ := strconv.ParseInt(m["webhook_id"].(string), 10, 64)
		got[hid] = append(got[hid], fmt.Sprint(m["action"], ".", m["entity"]))
	}
	for i, tt := range tests {
		t.Run(tt.action+"."+tt.object, func(t *testing.T) {
			g := got[ids[i]]
			slices.Sort(g)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(g, want) {
				t.Errorf("webhook %s.%s got %v, want %v", tt.action, tt.object, g, want)
			}
		})
	}
}

// TestWebhookRetrySchedule checks 3/30/150 s on the simulated clock, a stable event id,
// attempts 1–4, and that a 2xx ends the retries.
func TestWebhookRetrySchedule(t *testing.T) {
	tests := []struct {
		name         string
		answers      []int // per request; the last repeats
		wantAttempts []int // attempts that reach the receiver
		wantPending  int   // retries left at the end
	}{
		{"always failing", []int{500}, []int{1, 2, 3, 4}, 0},
		{"second attempt succeeds", []int{503, 204}, []int{1, 2}, 0},
		{"redirect is a failure", []int{302, 302, 302, 200}, []int{1, 2, 3, 4}, 0},
		{"first attempt succeeds", []int{200}, []int{1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, Config{})
			tok := s.install().AccessToken
			rc := newHookReceiver(t, func(n int) int { return tt.answers[min(n, len(tt.answers))-1] })
			s.hook(tok, "deal", "create", rc.URL, nil)
			s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "R"})
			s.wait()
			for _, step := range []time.Duration{3 * time.Second, 30 * time.Second, 150 * time.Second} {
				s.clock.Advance(step - time.Millisecond)
				if ds := s.DeliverDue(context.Background()); len(ds) != 0 {
					t.Fatalf("DeliverDue 1 ms before the retry = %+v, want nothing", ds)
				}
				s.clock.Advance(time.Millisecond)
				s.DeliverDue(context.Background())
			}
			hits := rc.got()
			var attempts []int
			for _, h := range hits {
				attempts = append(attempts, int(h.body["meta"].(map[string]any)["attempt"].(float64)))
				if h.body["meta"].(map[string]any)["id"] != hits[0].body["meta"].(map[string]any)["id"] {
					t.Errorf("meta.id changed across attempts")
				}
			}
			if !slices.Equal(attempts, tt.wantAttempts) {
				t.Errorf("attempts = %v, want %v", attempts, tt.wantAttempts)
			}
			if p := s.PendingRetries(); len(p) != tt.wantPending {
				t.Errorf("pending retries = %v, want %d", p, tt.wantPending)
			}
			ds := s.Deliveries()
			offsets := []time.Duration{0, 3 * time.Second, 33 * time.Second, 183 * time.Second}
			for i, d := range ds {
				if !d.Time.Equal(t0.Add(offsets[i])) || d.Attempt != i+1 {
					t.Errorf("delivery %d at %v attempt %d, want %v attempt %d", i, d.Time, d.Attempt, t0.Add(offsets[i]), i+1)
				}
			}
		})
	}
}

// TestWebhookTimeout checks that a receiver slower than WebhookTimeout is a failed attempt
// with a retry.
func TestWebhookTimeout(t *testing.T) {
	s := newSim(t, Config{WebhookTimeout: 50 * time.Millisecond})
	tok := s.install().AccessToken
	rc := newHookReceiver(t, func(int) int { return -1 })
	s.hook(tok, "deal", "*", rc.URL, nil)
	s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "T"})
	s.wait()
	ds := s.Deliveries()
	if len(ds) != 1 || ds[0].Outcome != OutcomeTimeout || ds[0].Status != 0 || ds[0].NextAttemptAt == nil || !ds[0].NextAttemptAt.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("deliveries = %+v, want one timeout with a retry at +3s", ds)
	}
	if c := s.Counters(); c.WebhookDeliveries[OutcomeTimeout] != 1 || c.WebhookByStatus[0] != 1 {
		t.Errorf("counters = %v %v, want one timeout, status 0", c.WebhookDeliveries, c.WebhookByStatus)
	}
}

// TestWebhookBan checks the ban after 10 failed first attempts, that a success does not reset
// the count (only the end of a ban does), and that the ban ends after 30 minutes.
func TestWebhookBan(t *testing.T) {
	tests := []struct {
		name       string
		answers    []int // first attempts, in order
		wantBanned bool
	}{
		{"ten failures", []int{500, 500, 500, 500, 500, 500, 500, 500, 500, 500}, true},
		{"nine failures", []int{500, 500, 500, 500, 500, 500, 500, 500, 500}, false},
		{"a success in between does not reset the count", []int{500, 500, 500, 500, 500, 200, 500, 500, 500, 500, 500}, true},
		{"nine failures and successes", []int{500, 200, 500, 200, 500, 500, 500, 500, 500, 200, 500}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, Config{})
			tok := s.install().AccessToken
			var mu sync.Mutex
			status := 500
			rc := newHookReceiver(t, func(int) int { mu.Lock(); defer mu.Unlock(); return status })
			hookID := s.hook(tok, "deal", "create", rc.URL, nil)
			for _, a := range tt.answers {
				mu.Lock()
				status = a
				mu.Unlock()
				s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "x"})
				s.wait()
			}
			sent := len(rc.got())
			mu.Lock()
			status = 200
			mu.Unlock()
			s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "during"})
			s.wait()
			last := s.Deliveries()[len(s.Deliveries())-1]
			if banned := last.Outcome == OutcomeBanned; banned != tt.wantBanned {
				t.Fatalf("delivery after %d answers = %+v, want banned %v", len(tt.answers), last, tt.wantBanned)
			}
			if !tt.wantBanned {
				return
			}
			if len(rc.got()) != sent {
				t.Errorf("receiver got a request during the ban")
			}
			list := s.api("GET", "/api/v1/webhooks", tok, nil).json(t)["data"].([]any)[0].(map[string]any)
			if list["is_subscription_ban"] != true || list["last_http_status"] != float64(500) {
				t.Errorf("webhook = %v, want is_subscription_ban true, last_http_status 500", list)
			}
			// Retries due during the ban are dropped too.
			s.clock.Advance(3 * time.Second)
			for _, d := range s.DeliverDue(context.Background()) {
				if d.Outcome != OutcomeBanned {
					t.Errorf("retry during ban = %+v, want dropped", d)
				}
			}
			s.clock.Advance(WebhookBanDuration)
			s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "after"})
			s.wait()
			last = s.Deliveries()[len(s.Deliveries())-1]
			if last.Outcome != OutcomeDelivered || last.WebhookID != hookID {
				t.Errorf("delivery after the ban = %+v, want delivered", last)
			}
			if c := s.Counters(); c.WebhookDeliveries[OutcomeBanned] < 2 {
				t.Errorf("banned counter = %d, want at least 2", c.WebhookDeliveries[OutcomeBanned])
			}
			// The ban's end reset the count: nine more failures do not ban again.
			if hs := s.Webhooks(s.cfg.UserID); len(hs) != 1 || hs[0].ConsecutiveFailures != 0 {
				t.Errorf("webhooks after the ban = %+v, want one with no failures counted", hs)
			}
		})
	}
}

// TestWebhookDeletedAfterThreeDays checks that a webhook without a successful delivery for 3
// days is deleted (also when no event comes at the deadline: DeliverDue sweeps), that a
// success restarts the 3 days, and that the events of the failing days are not delivered
// later.
func TestWebhookDeletedAfterThreeDays(t *testing.T) {
	tests := []struct {
		name        string
		successAt   time.Duration // a successful delivery this long after the first failure; 0: none
		wantDeleted bool
	}{
		{"failing for 3 days", 0, true},
		{"a success on day 2", 48 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, Config{})
			inst := s.install()
			tok := inst.AccessToken
			var mu sync.Mutex
			status := 503
			rc := newHookReceiver(t, func(int) int { mu.Lock(); defer mu.Unlock(); return status })
			hookID := s.hook(tok, "deal", "*", rc.URL, nil)
			s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "first failure"})
			s.wait()
			if hs := s.Webhooks(s.cfg.UserID); len(hs) != 1 || !hs[0].FailingSince.Equal(t0) {
				t.Fatalf("webhooks = %+v, want one failing since %s", hs, t0)
			}
			if tt.successAt > 0 {
				s.clock.Advance(tt.successAt)
				tok = s.refreshToken(inst.RefreshToken).AccessToken
				mu.Lock()
				status = 200
				mu.Unlock()
				s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "success"})
				s.wait()
				s.clock.Advance(WebhookDeleteAfter - tt.successAt)
			} else {
				s.clock.Advance(WebhookDeleteAfter - time.Second)
				s.DeliverDue(context.Background())
				if len(s.Webhooks(s.cfg.UserID)) != 1 {
					t.Fatalf("webhook deleted a second before 3 days")
				}
				s.clock.Advance(time.Second)
			}
			s.DeliverDue(context.Background())
			// Days later: a fresh access token.
			tok = s.refreshToken(inst.RefreshToken).AccessToken
			hooks := s.api("GET", "/api/v1/webhooks", tok, nil).json(t)["data"].([]any)
			if deleted := len(hooks) == 0; deleted != tt.wantDeleted {
				t.Fatalf("webhooks listed after 3 days = %v, want deleted %v", hooks, tt.wantDeleted)
			}
			if !tt.wantDeleted {
				return
			}
			if c := s.Counters(); c.WebhooksDeleted != 1 {
				t.Errorf("webhooks_deleted = %d, want 1", c.WebhooksDeleted)
			}
			mu.Lock()
			status = 200
			mu.Unlock()
			before := len(rc.got())
			s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "after deletion"})
			s.wait()
			s.clock.Advance(time.Hour)
			s.DeliverDue(context.Background())
			if got := len(rc.got()); got != before {
				t.Errorf("receiver got %d requests after webhook %d was deleted, want none", got-before, hookID)
			}
		})
	}
}

// TestRedeliverConcurrent checks three concurrent copies of one event: same meta.id, all at
// once, recorded as redeliveries.
func TestRedeliverConcurrent(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	rc := newHookReceiver(t, func(n int) int {
		if n == 1 {
			return 200 // the original delivery
		}
		mu.Lock()
		arrived++
		if arrived == 3 {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return 200
		case <-time.After(5 * time.Second):
			return 503 // the copies did not overlap
		}
	})
	s.hook(tok, "deal", "create", rc.URL, nil)
	s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "dup"})
	s.wait()
	ev := s.Events()[0]
	ds, err := s.Redeliver(context.Background(), ev.ID, RedeliverOptions{Times: 3, Concurrent: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("Redeliver = %d deliveries, want 3", len(ds))
	}
	for _, d := range ds {
		if d.Outcome != OutcomeDelivered || !d.Redelivery || d.EventID != ev.ID || d.Attempt != 1 {
			t.Errorf("redelivery = %+v, want delivered copy of %s", d, ev.ID)
		}
	}
	for _, h := range rc.got() {
		if id := h.body["meta"].(map[string]any)["id"]; id != ev.ID {
			t.Errorf("meta.id = %v, want %s", id, ev.ID)
		}
	}
	if _, err := s.Redeliver(context.Background(), "nope", RedeliverOptions{}); err == nil {
		t.Error("Redeliver(unknown) = nil error, want ErrUnknownEvent")
	}
}

// TestWebhookPasswordNeverShown checks logs, the delivery listing and the webhook listing.
func TestWebhookPasswordNeverShown(t *testing.T) {
	var logs bytes.Buffer
	var lmu sync.Mutex
	s := newSim(t, Config{AdminEnabled: true, Logger: slog.New(slog.NewJSONHandler(lockedWriter{&lmu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	tok := s.install().AccessToken
	rc := newHookReceiver(t, func(n int) int { return []int{500, 200}[min(n, 2)-1] })
	s.hook(tok, "deal", "*", rc.URL, map[string]any{"http_auth_user": "pd", "http_auth_password": "hunter2-secret"})
	s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "p"})
	s.wait()
	s.clock.Advance(3 * time.Second)
	s.DeliverDue(context.Background())
	listing := s.admin("GET", "/_sim/deliveries", "")
	hooks := s.admin("GET", "/_sim/webhooks?user_id=5206648", "")
	lmu.Lock()
	defer lmu.Unlock()
	for what, text := range map[string]string{"logs": logs.String(), "deliveries": string(listing.body), "webhooks": string(hooks.body)} {
		if strings.Contains(text, "hunter2-secret") {
			t.Errorf("%s contain the webhook password", what)
		}
	}
	var ds []Delivery
	if err := json.Unmarshal(listing.body, &ds); err != nil || len(ds) != 2 || !ds[0].BasicAuth || ds[0].Status != 500 || ds[1].Status != 200 || ds[1].Attempt != 2 {
		t.Errorf("deliveries = %s (%v), want two with basic_auth, 500 then 200", listing.body, err)
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

// Write writes b under the lock.
func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestAdminUserActionsAndRedeliver drives events and deliveries over the admin HTTP API.
func TestAdminUserActionsAndRedeliver(t *testing.T) {
	s := newSim(t, Config{AdminEnabled: true})
	tok := s.install().AccessToken
	rc := newHookReceiver(t, nil)
	s.hook(tok, "*", "*", rc.URL, nil)
	r := s.admin("POST", "/_sim/user-actions", `{"object":"deal","action":"create","fields":{"title":"From the app","value":7}}`)
	wantStatus(t, "user action", r, 201)
	var out struct {
		Event Event          `json:"event"`
		Data  map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || out.Event.Source != "app" || out.Data["title"] != "From the app" || len(out.Event.WebhookIDs) != 1 {
		t.Fatalf("user action = %s (%v), want an app event reaching one webhook", r.body, err)
	}
	wantStatus(t, "wait", s.admin("POST", "/_sim/deliveries/wait", `{"timeout":"5s"}`), 204)
	if h := rc.got(); len(h) != 1 || h[0].body["meta"].(map[string]any)["change_source"] != "app" {
		t.Fatalf("receiver got %v, want one app change", h)
	}
	change := fmt.Sprintf(`{"object":"deal","action":"change","id":%d,"fields":{"status":"won"}}`, out.Event.EntityID)
	wantStatus(t, "change", s.admin("POST", "/_sim/user-actions", change), 201)
	wantStatus(t, "missing deal", s.admin("POST", "/_sim/user-actions", `{"object":"deal","action":"delete","id":999}`), 404)
	wantStatus(t, "bad object", s.admin("POST", "/_sim/user-actions", `{"object":"spaceship","action":"create"}`), 400)
	wantStatus(t, "bad fields", s.admin("POST", "/_sim/user-actions", `{"object":"deal","action":"create","fields":{}}`), 400)
	wantStatus(t, "unknown user", s.admin("POST", "/_sim/user-actions", `{"user_id":1,"object":"deal","action":"create"}`), 404)

	r = s.admin("POST", "/_sim/events/"+out.Event.ID+"/redeliver", `{"times":3,"concurrent":true,"attempt":2}`)
	wantStatus(t, "redeliver", r, 200)
	var red struct{ Deliveries []Delivery }
	if err := json.Unmarshal(r.body, &red); err != nil || len(red.Deliveries) != 3 || red.Deliveries[0].Attempt != 2 {
		t.Errorf("redeliver = %s, want 3 deliveries with attempt 2", r.body)
	}
	wantStatus(t, "redeliver unknown", s.admin("POST", "/_sim/events/nope/redeliver", `{}`), 404)
	r = s.admin("GET", "/_sim/deliveries?event_id="+out.Event.ID, "")
	var ds []Delivery
	if err := json.Unmarshal(r.body, &ds); err != nil || len(ds) != 4 {
		t.Errorf("deliveries of the event = %s, want 4", r.body)
	}
	r = s.admin("GET", "/_sim/events", "")
	var evs []Event
	if err := json.Unmarshal(r.body, &evs); err != nil || len(evs) != 2 {
		t.Errorf("events = %s, want 2", r.body)
	}
	wantStatus(t, "run-due", s.admin("POST", "/_sim/deliveries/run-due", ""), 200)
	wantStatus(t, "clear", s.admin("DELETE", "/_sim/deliveries", ""), 204)
	if n := len(s.Deliveries()); n != 0 {
		t.Errorf("deliveries after clear = %d, want 0", n)
	}
	// The change's delivery is asynchronous: wait for it before counting.
	wantStatus(t, "wait", s.admin("POST", "/_sim/deliveries/wait", `{"timeout":"5s"}`), 204)
	if c := s.Counters(); c.WebhookDeliveries[OutcomeDelivered] != 5 || c.WebhookByStatus[200] != 5 {
		t.Errorf("counters = %v %v, want 5 delivered with 200", c.WebhookDeliveries, c.WebhookByStatus)
	}
}

// TestWebhookObjects checks that every documented v2 object and action can be subscribed to.
func TestWebhookObjects(t *testing.T) {
	s := newSim(t, Config{WebhookLimit: 100})
	tok := s.install().AccessToken
	for _, obj := range []string{"activity", "deal", "lead", "note", "organization", "person", "pipeline", "product", "stage", "user", "deal_product", "deal_installment", "project", "task", "board", "phase", "*"} {
		for _, act := range []string{"create", "change", "delete", "*"} {
			s.hook(tok, obj, act, "https://app.example/h", nil)
		}
	}
	if h := s.Webhooks(DefaultUserID); len(h) != 68 || h[0].Version != "2.0" {
		t.Errorf("webhooks = %d (version %q), want 68 of version 2.0", len(h), h[0].Version)
	}
}

// TestWebhookColleagueChange: a change made by a colleague of the installing user (same
// company, another user) is delivered to the installing user's webhook with meta.user_id the
// colleague (who made the change) and meta.webhook_owner_id the installing user (whose webhook
// it is), as Pipedrive's v2 guide describes; v1 names no owner.
func TestWebhookColleagueChange(t *testing.T) {
	s := newSim(t, Config{})
	const colleague = 7700001
	if err := s.AddUser(User{ID: colleague, CompanyID: DefaultCompanyID, CompanyDomain: DefaultCompanyDomain, CompanyName: DefaultCompanyName,
		Name: "Grace Hopper", Email: "grace@acme.example"}); err != nil {
		t.Fatal(err)
	}
	tok := s.install().AccessToken
	rc := newHookReceiver(t, nil)
	s.hook(tok, "deal", "create", rc.URL, nil)
	s.hook(tok, "deal", "create", rc.URL, map[string]any{"version": "1.0"})
	ev, _, err := s.ActAsUser(UserAction{UserID: colleague, Object: "deal", Action: "create", Fields: map[string]any{"title": "Grace's deal"}})
	if err != nil {
		t.Fatal(err)
	}
	s.wait()
	hits := rc.got()
	if len(hits) != 2 {
		t.Fatalf("deliveries = %d, want 2 (one per webhook)", len(hits))
	}
	for _, h := range hits {
		meta := h.body["meta"].(map[string]any)
		if h.body["v"] != nil { // v1
			if _, ok := meta["webhook_owner_id"]; ok || meta["user_id"] != float64(colleague) {
				t.Errorf("v1 meta = %v, want user_id the colleague and no webhook_owner_id", meta)
			}
			continue
		}
		if meta["user_id"] != fmt.Sprint(colleague) || meta["webhook_owner_id"] != fmt.Sprint(DefaultUserID) ||
			meta["entity_id"] != fmt.Sprint(ev.EntityID) || meta["type"] != "application" {
			t.Errorf("v2 meta = %v, want user_id %d (actor), webhook_owner_id %d (owner), type application", meta, colleague, DefaultUserID)
		}
	}
}

// TestAgeFailures: a failing webhook aged by the deletion delay is deleted at the next
// DeliverDue; a healthy one is not touched; an unknown id is an error.
func TestAgeFailures(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	failing := s.hook(tok, "deal", "*", newHookReceiver(t, func(int) int { return 503 }).URL, nil)
	healthy := s.hook(tok, "person", "*", newHookReceiver(t, nil).URL, nil)
	s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "x"})
	s.created("POST", "/api/v2/persons", tok, map[string]any{"name": "y"})
	s.wait()
	for _, id := range []int64{failing, healthy} {
		if err := s.AgeFailures(id, WebhookDeleteAfter); err != nil {
			t.Fatal(err)
		}
	}
	s.DeliverDue(context.Background())
	if hs := s.Webhooks(s.cfg.UserID); len(hs) != 1 || hs[0].ID != healthy {
		t.Errorf("webhooks after aging = %+v, want only the healthy one", hs)
	}
	if err := s.AgeFailures(failing, time.Hour); !errors.Is(err, ErrUnknownWebhook) {
		t.Errorf("AgeFailures(deleted) = %v, want ErrUnknownWebhook", err)
	}
}

// TestWebhookPayloadKeepsHTML: HTML in an entity is delivered as Pipedrive writes JSON (<, >
// and & as they are, not \u003c), so a receiver sees an HTML-heavy event at its real size; the
// API answers the same way.
func TestWebhookPayloadKeepsHTML(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	rc := newHookReceiver(t, nil)
	s.hook(tok, "deal", "create", rc.URL, nil)
	const title = `<b>Big</b> & <i>bold</i>`
	id := s.created("POST", "/api/v2/deals", tok, map[string]any{"title": title})
	s.wait()
	hits := rc.got()
	if len(hits) != 1 || !strings.Contains(string(hits[0].raw), title) || strings.Contains(string(hits[0].raw), `\u003c`) {
		t.Fatalf("delivery body = %.300s, want the title %q as it is", hits[0].raw, title)
	}
	r := s.api("GET", fmt.Sprintf("/api/v2/deals/%d", id), tok, nil)
	if !strings.Contains(string(r.body), title) {
		t.Errorf("GET deal = %.300s, want the title %q as it is", r.body, title)
	}
}
