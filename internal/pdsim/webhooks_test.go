package pdsim

import (
	"fmt"
	"testing"
)

// hookBody is a valid webhook creation body.
func hookBody(name string) map[string]any {
	return map[string]any{"subscription_url": "https://app.example/hooks", "event_action": "*", "event_object": "deal", "name": name}
}

// TestWebhookCreateShape checks the 201 answer and the stored webhook.
func TestWebhookCreateShape(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	body := hookBody("deals")
	body["http_auth_user"] = "u"
	body["http_auth_password"] = "p"
	r := s.api("POST", "/api/v1/webhooks", tok, body)
	if r.status != 201 {
		t.Fatalf("create = %d (%s), want 201", r.status, r.body)
	}
	m := r.json(t)
	d := m["data"].(map[string]any)
	want := map[string]any{
		"company_id": float64(DefaultCompanyID), "owner_id": float64(DefaultUserID), "user_id": float64(DefaultUserID),
		"event_action": "*", "event_object": "deal", "subscription_url": "https://app.example/hooks",
		"is_active": float64(1), "type": "application", "version": "2.0", "name": "deals", "http_auth_user": "u",
	}
	if m["success"] != true {
		t.Errorf("success = %v, want true", m["success"])
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("webhook %s = %v, want %v", k, d[k], v)
		}
	}
	hooks := s.Webhooks(DefaultUserID)
	if len(hooks) != 1 || hooks[0].HTTPAuthPassword != "p" || float64(hooks[0].ID) != d["id"] {
		t.Errorf("Webhooks = %+v, want the created one", hooks)
	}
	list := s.api("GET", "/api/v1/webhooks", tok, nil).json(t)["data"].([]any)
	if len(list) != 1 {
		t.Errorf("list = %d webhooks, want 1", len(list))
	}
	path := fmt.Sprintf("/api/v1/webhooks/%d", hooks[0].ID)
	if r := s.api("DELETE", path, tok, nil); r.status != 200 {
		t.Errorf("delete = %d, want 200", r.status)
	}
	wantAPIError(t, s.api("DELETE", path, tok, nil), 404, MsgWebhookNotFound)
}

// TestWebhookValidation checks the 400 error shape per field.
func TestWebhookValidation(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	tests := []struct {
		name  string
		edit  func(map[string]any)
		field string
		msg   string
	}{
		{"relative url", func(b map[string]any) { b["subscription_url"] = "/hooks" }, "subscription_url", "invalid or non-reachable URL"},
		{"ftp url", func(b map[string]any) { b["subscription_url"] = "ftp://app.example/h" }, "subscription_url", "invalid or non-reachable URL"},
		{"no url", func(b map[string]any) { delete(b, "subscription_url") }, "subscription_url", "invalid or non-reachable URL"},
		{"bad action", func(b map[string]any) { b["event_action"] = "explode" }, "event_action", "invalid value"},
		{"bad object", func(b map[string]any) { b["event_object"] = "spaceship" }, "event_object", "invalid value"},
		{"no name", func(b map[string]any) { delete(b, "name") }, "name", "is required"},
		{"bad version", func(b map[string]any) { b["version"] = "3.0" }, "version", "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := hookBody("x")
			tt.edit(b)
			r := s.api("POST", "/api/v1/webhooks", tok, b)
			if r.status != 400 {
				t.Fatalf("create = %d (%s), want 400", r.status, r.body)
			}
			m := r.json(t)
			errs, _ := m["errors"].(map[string]any)
			msgs, _ := errs[tt.field].([]any)
			if m["status"] != "error" || m["success"] != false || len(msgs) != 1 || msgs[0] != tt.msg {
				t.Errorf("body = %s, want status error, errors.%s = [%q]", r.body, tt.field, tt.msg)
			}
		})
	}
}

// TestWebhookLimit checks that the 41st webhook answers 422 and that deleting one frees a slot.
func TestWebhookLimit(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	for i := range 40 {
		if r := s.api("POST", "/api/v1/webhooks", tok, hookBody(fmt.Sprint("h", i))); r.status != 201 {
			t.Fatalf("webhook %d = %d (%s), want 201", i+1, r.status, r.body)
		}
	}
	wantAPIError(t, s.api("POST", "/api/v1/webhooks", tok, hookBody("h40")), 422, MsgWebhooksLimit)

	// Another user of the same company has their own 40.
	if err := s.AddUser(User{ID: 5, CompanyID: DefaultCompanyID, Scopes: []string{"base", "webhooks:full"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActingUser(5); err != nil {
		t.Fatal(err)
	}
	other := s.install().AccessToken
	if r := s.api("POST", "/api/v1/webhooks", other, hookBody("o")); r.status != 201 {
		t.Errorf("other user's first webhook = %d, want 201", r.status)
	}

	first := s.Webhooks(DefaultUserID)[0]
	if r := s.api("DELETE", fmt.Sprintf("/api/v1/webhooks/%d", first.ID), tok, nil); r.status != 200 {
		t.Fatalf("delete = %d, want 200", r.status)
	}
	if r := s.api("POST", "/api/v1/webhooks", tok, hookBody("again")); r.status != 201 {
		t.Errorf("create after delete = %d, want 201", r.status)
	}
	if c := s.Counters(); c.APIByStatus[422] != 1 || c.APIByRoute["POST /api/v1/webhooks"] != 43 {
		t.Errorf("counters status %v routes %v, want one 422 and 43 POSTs", c.APIByStatus, c.APIByRoute)
	}
}

// TestWebhookScopes checks which scopes may list and create webhooks.
func TestWebhookScopes(t *testing.T) {
	tests := []struct {
		scope              string
		listWant, postWant int
	}{
		{"admin", 200, 201},
		{"webhooks:full", 200, 201},
		{"webhooks:read", 200, 403},
		{"deals:full", 403, 403},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			s := newSim(t, Config{Scopes: []string{"base", tt.scope}})
			tok := s.install().AccessToken
			if r := s.api("GET", "/api/v1/webhooks", tok, nil); r.status != tt.listWant {
				t.Errorf("GET webhooks with %s = %d, want %d", tt.scope, r.status, tt.listWant)
			}
			if r := s.api("POST", "/api/v1/webhooks", tok, hookBody("x")); r.status != tt.postWant {
				t.Errorf("POST webhooks with %s = %d, want %d", tt.scope, r.status, tt.postWant)
			}
		})
	}
}
