package webhook_test

import (
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseV2(t *testing.T) {
	e, err := webhook.Parse(read(t, "v2_deal_create.json"))
	if err != nil {
		t.Fatalf("Parse(v2) = %v", err)
	}
	want := webhook.Event{ID: "6f1e3a52-2b7c-4d8e-9f01-23456789abcd", Version: "2.0", Action: "create", Entity: "deal",
		EntityID: "101", CompanyID: 3408256, UserID: 5206648, Timestamp: time.Date(2026, 11, 30, 12, 0, 1, 123e6, time.UTC),
		ActorUserID: 5206648, WebhookID: "77", Attempt: 1, CorrelationID: "0b0c2d5e-8f1a-4a7e-9b8c-1d2e3f405162"}
	got := e
	got.Data, got.Previous = nil, nil
	if !equal(got, want) {
		t.Errorf("Parse(v2) = %+v, want %+v", got, want)
	}
	if !strings.Contains(string(e.Data), `"Big deal"`) || string(e.Previous) != "null" {
		t.Errorf("Parse(v2) data = %s previous = %s", e.Data, e.Previous)
	}
	if e.Key() != "webhook#3408256:5206648#6f1e3a52-2b7c-4d8e-9f01-23456789abcd" || e.EntityKey() != "entity#3408256:5206648#deal#101" {
		t.Errorf("Key = %q, EntityKey = %q", e.Key(), e.EntityKey())
	}
}

func TestParseV1MapsToTheSameShape(t *testing.T) {
	e, err := webhook.Parse(read(t, "v1_deal_updated.json"))
	if err != nil {
		t.Fatalf("Parse(v1) = %v", err)
	}
	if e.Version != "1.0" || e.Action != webhook.ActionChange || e.Entity != "deal" || e.EntityID != "101" ||
		e.CompanyID != 3408256 || e.UserID != 0 || e.ActorUserID != 5206648 || e.Attempt != 3 || e.WebhookID != "12" ||
		!e.Timestamp.Equal(time.UnixMicro(1796040001123456)) {
		t.Errorf("Parse(v1) = %+v", e)
	}
	if !strings.Contains(string(e.Data), "Bigger deal") || !strings.Contains(string(e.Previous), `"Big deal"`) {
		t.Errorf("Parse(v1) current/previous = %s / %s", e.Data, e.Previous)
	}
	// A retry of the same v1 change has the same identity; another change does not.
	again, _ := webhook.Parse([]byte(strings.Replace(string(read(t, "v1_deal_updated.json")), `"retry":2`, `"retry":0`, 1)))
	other, _ := webhook.Parse([]byte(strings.Replace(string(read(t, "v1_deal_updated.json")), `1796040001123456`, `1796040009000000`, 1)))
	if again.ID != e.ID || other.ID == e.ID {
		t.Errorf("v1 identities: retry %q, original %q, later change %q", again.ID, e.ID, other.ID)
	}
}

func TestParseRejects(t *testing.T) {
	v2 := string(read(t, "v2_deal_create.json"))
	tests := []struct {
		name string
		body string
		want error
	}{
		{"empty", ``, webhook.ErrMalformed},
		{"not JSON", `hello`, webhook.ErrMalformed},
		{"truncated", v2[:60], webhook.ErrMalformed},
		{"array", `[]`, webhook.ErrMalformed},
		{"null", `null`, webhook.ErrMalformed},
		{"no meta", `{"data":{}}`, webhook.ErrMalformed},
		{"meta not an object", `{"meta":"x"}`, webhook.ErrMalformed},
		{"no event id", strings.Replace(v2, `"id":"6f1e3a52-2b7c-4d8e-9f01-23456789abcd",`, ``, 1), webhook.ErrMalformed},
		{"unknown action", strings.Replace(v2, `"action":"create"`, `"action":"explode"`, 1), webhook.ErrMalformed},
		{"company id not a number", strings.Replace(v2, `"company_id":3408256`, `"company_id":"acme"`, 1), webhook.ErrMalformed},
		{"user id zero", strings.Replace(v2, `"user_id":5206648`, `"user_id":0`, 1), webhook.ErrMalformed},
		{"owner id not a number", strings.Replace(v2, `"webhook_owner_id":5206648`, `"webhook_owner_id":"ada"`, 1), webhook.ErrMalformed},
		{"owner id negative", strings.Replace(v2, `"webhook_owner_id":5206648`, `"webhook_owner_id":-5`, 1), webhook.ErrMalformed},
		{"entity id text", strings.Replace(v2, `"entity_id":101`, `"entity_id":"deal-101"`, 1), webhook.ErrMalformed},
		{"entity id leading zero", strings.Replace(v2, `"entity_id":101`, `"entity_id":"0101"`, 1), webhook.ErrMalformed},
		{"entity id zero", strings.Replace(v2, `"entity_id":101`, `"entity_id":0`, 1), webhook.ErrMalformed},
		{"entity id signed", strings.Replace(v2, `"entity_id":101`, `"entity_id":"+101"`, 1), webhook.ErrMalformed},
		{"entity id fraction", strings.Replace(v2, `"entity_id":101`, `"entity_id":101.5`, 1), webhook.ErrMalformed},
		{"entity id UUID without dashes", strings.Replace(v2, `"entity_id":101`, `"entity_id":"adf21080f3d911ed9b8f1b4e5e5a7e1a"`, 1), webhook.ErrMalformed},
		{"merged_to_id text", strings.Replace(v2, `"version":"2.0"`, `"version":"2.0","merged_to_id":"the other one"`, 1), webhook.ErrMalformed},
		{"merged_from_id object", strings.Replace(v2, `"version":"2.0"`, `"version":"2.0","merged_from_id":{"id":7}`, 1), webhook.ErrMalformed},
		{"bad timestamp", strings.Replace(v2, `"2026-11-30T12:00:01.123Z"`, `"yesterday"`, 1), webhook.ErrMalformed},
		{"version 3", strings.Replace(v2, `"version":"2.0"`, `"version":"3.0"`, 1), webhook.ErrMalformed},
		{"key separator in id", strings.Replace(v2, `6f1e3a52-`, `6f1e#3a52-`, 1), webhook.ErrMalformed},
		{"entity id object", strings.Replace(v2, `"entity_id":101`, `"entity_id":{"id":1}`, 1), webhook.ErrMalformed},
		{"too large", `{"meta":{},"data":"` + strings.Repeat("x", webhook.MaxBody) + `"}`, webhook.ErrTooLarge},
		{"v1 unknown action", strings.Replace(string(read(t, "v1_deal_updated.json")), `"action":"updated"`, `"action":"teleported"`, 1), webhook.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhook.Parse([]byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
			if len(tt.body) > 20 && strings.Contains(err.Error(), tt.body[:20]) {
				t.Errorf("error quotes the body: %v", err)
			}
		})
	}
}

// TestParseOwnerActorAndMerges: the event belongs to the webhook's owner, whoever made the
// change; ids as strings or numbers; merges exposed; entity ids as digits or a UUID.
func TestParseOwnerActorAndMerges(t *testing.T) {
	v2 := string(read(t, "v2_deal_create.json"))
	colleague := strings.Replace(v2, `"user_id":5206648`, `"user_id":"7700001"`, 1)
	tests := []struct {
		name                     string
		body                     string
		owner, actor             int64
		entityID, mergedTo, from string
	}{
		{"own change, numbers", v2, 5206648, 5206648, "101", "", ""},
		{"colleague's change", colleague, 5206648, 7700001, "101", "", ""},
		{"ids as strings", strings.NewReplacer(`"company_id":3408256`, `"company_id":"3408256"`, `"webhook_owner_id":5206648`, `"webhook_owner_id":"5206648"`,
			`"entity_id":101`, `"entity_id":"101"`).Replace(colleague), 5206648, 7700001, "101", "", ""},
		{"no owner (older v2)", strings.Replace(v2, `,"webhook_owner_id":5206648`, ``, 1), 0, 5206648, "101", "", ""},
		{"owner null", strings.Replace(v2, `"webhook_owner_id":5206648`, `"webhook_owner_id":null`, 1), 0, 5206648, "101", "", ""},
		{"no actor", strings.Replace(v2, `"user_id":5206648,`, ``, 1), 5206648, 0, "101", "", ""},
		{"lead UUID", strings.Replace(v2, `"entity_id":101`, `"entity_id":"adf21080-f3d9-11ed-9b8f-1b4e5e5a7e1a"`, 1), 5206648, 5206648, "adf21080-f3d9-11ed-9b8f-1b4e5e5a7e1a", "", ""},
		{"merged away (delete)", strings.Replace(strings.Replace(v2, `"action":"create"`, `"action":"delete"`, 1), `"version":"2.0"`, `"version":"2.0","merged_to_id":"205"`, 1), 5206648, 5206648, "101", "205", ""},
		{"merge survivor (change)", strings.Replace(strings.Replace(v2, `"action":"create"`, `"action":"change"`, 1), `"version":"2.0"`, `"version":"2.0","merged_from_id":99`, 1), 5206648, 5206648, "101", "", "99"},
		{"merge fields null", strings.Replace(v2, `"version":"2.0"`, `"version":"2.0","merged_to_id":null,"merged_from_id":""`, 1), 5206648, 5206648, "101", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := webhook.Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse = %v", err)
			}
			if e.UserID != tt.owner || e.ActorUserID != tt.actor || e.EntityID != tt.entityID || e.MergedToID != tt.mergedTo || e.MergedFromID != tt.from {
				t.Errorf("Parse = owner %d actor %d entity %q merged to %q from %q; want %d %d %q %q %q",
					e.UserID, e.ActorUserID, e.EntityID, e.MergedToID, e.MergedFromID, tt.owner, tt.actor, tt.entityID, tt.mergedTo, tt.from)
			}
			if e.CompanyID != 3408256 {
				t.Errorf("CompanyID = %d, want 3408256", e.CompanyID)
			}
		})
	}
	// Two installations of one company get their own copy: the keys differ by owner.
	a, _ := webhook.Parse([]byte(colleague))
	b, _ := webhook.Parse([]byte(strings.Replace(colleague, `"webhook_owner_id":5206648`, `"webhook_owner_id":7700001`, 1)))
	if a.Key() == b.Key() || a.EntityKey() == b.EntityKey() || b.Installation().UserID != 7700001 {
		t.Errorf("keys of two owners' copies: %q / %q, entity %q / %q; want distinct", a.Key(), b.Key(), a.EntityKey(), b.EntityKey())
	}
}

// TestParseTimestamps: epochs in seconds, milliseconds and microseconds are told apart, so a
// millisecond epoch is never read as seconds (the year 57000); ClampFuture brings a timestamp
// more than MaxClockSkew ahead back to the receiver's clock.
func TestParseTimestamps(t *testing.T) {
	v2 := string(read(t, "v2_deal_create.json"))
	at := time.Date(2026, 11, 30, 12, 0, 1, 0, time.UTC)
	tests := []struct {
		name string
		ts   string
		want time.Time
	}{
		{"RFC 3339 millis", `"2026-11-30T12:00:01.000Z"`, at},
		{"epoch seconds", `1796040001`, at},
		{"epoch seconds as text", `"1796040001"`, at},
		{"epoch milliseconds", `1796040001000`, at},
		{"epoch microseconds", `1796040001000000`, at},
		{"date time", `"2026-11-30 12:00:01"`, at},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := webhook.Parse([]byte(strings.Replace(v2, `"2026-11-30T12:00:01.123Z"`, tt.ts, 1)))
			if err != nil {
				t.Fatalf("Parse(timestamp %s) = %v", tt.ts, err)
			}
			if !e.Timestamp.Equal(tt.want) {
				t.Errorf("Parse(timestamp %s).Timestamp = %v, want %v", tt.ts, e.Timestamp, tt.want)
			}
		})
	}
	now := at.Add(time.Hour)
	clamps := []struct {
		name    string
		ts      time.Time
		clamped bool
	}{
		{"past", at, false},
		{"slightly ahead (clock skew)", now.Add(webhook.MaxClockSkew), false},
		{"far ahead", now.Add(24 * time.Hour), true},
		{"year 9999", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range clamps {
		e := webhook.Event{Timestamp: tt.ts}
		got := e.ClampFuture(now)
		want := tt.ts
		if tt.clamped {
			want = now
		}
		if got != tt.clamped || !e.Timestamp.Equal(want) {
			t.Errorf("ClampFuture(%s) = %t, timestamp %v; want %t, %v", tt.name, got, e.Timestamp, tt.clamped, want)
		}
	}
}

func TestAuthorized(t *testing.T) {
	c := webhook.Credentials{User: "pipedrive", Password: "s3cret-password"}
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name   string
		header string
		want   bool
	}{
		{"right", basic("pipedrive:s3cret-password"), true},
		{"scheme case-insensitive", "basic " + base64.StdEncoding.EncodeToString([]byte("pipedrive:s3cret-password")), true},
		{"wrong password", basic("pipedrive:s3cret-passwore"), false},
		{"wrong user", basic("pipedrivf:s3cret-password"), false},
		{"password prefix", basic("pipedrive:s3cret"), false},
		{"missing", "", false},
		{"bearer", "Bearer abc", false},
		{"not base64", "Basic !!!", false},
		{"no colon", basic("pipedrive"), false},
	}
	for _, tt := range tests {
		if got := c.Authorized(tt.header); got != tt.want {
			t.Errorf("Authorized(%s) = %t, want %t", tt.name, got, tt.want)
		}
	}
	if (webhook.Credentials{}).Authorized(basic(":")) {
		t.Errorf("empty credentials authorized an empty Basic header")
	}
	if s := c.String() + c.GoString(); strings.Contains(s, "s3cret") {
		t.Errorf("Credentials print the password: %s", s)
	}
}

func TestDeriveCredentials(t *testing.T) {
	a, b := webhook.DeriveCredentials([]byte("key-one-0123456789abcdef0123456789")), webhook.DeriveCredentials([]byte("key-two-0123456789abcdef0123456789"))
	if !a.Valid() || a.User != webhook.DefaultUser || len(a.Password) < 40 || a.Password == b.Password {
		t.Errorf("DeriveCredentials = %v / %v: want valid, distinct per key", a, b)
	}
	if strings.Contains(a.Password, "key-one") {
		t.Errorf("derived password contains the key")
	}
	if webhook.DeriveCredentials(nil).Valid() {
		t.Errorf("DeriveCredentials(nil) is valid")
	}
}

func equal(a, b webhook.Event) bool {
	return a.ID == b.ID && a.Version == b.Version && a.Action == b.Action && a.Entity == b.Entity && a.EntityID == b.EntityID &&
		a.CompanyID == b.CompanyID && a.UserID == b.UserID && a.Timestamp.Equal(b.Timestamp) && a.WebhookID == b.WebhookID &&
		a.Attempt == b.Attempt && a.CorrelationID == b.CorrelationID && a.ActorUserID == b.ActorUserID &&
		a.MergedToID == b.MergedToID && a.MergedFromID == b.MergedFromID
}
