package jobs_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

func event(data string) webhook.Event {
	return webhook.Event{ID: "e-1", Version: "2.0", Action: webhook.ActionCreate, Entity: "note", EntityID: "7", CompanyID: 1, UserID: 2,
		ActorUserID: 3, Timestamp: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Data: json.RawMessage(data), Previous: json.RawMessage(`null`)}
}

// TestWebhookEventJob: the job carries the event unescaped and measured as the message it
// becomes; one too large for a message goes without its data, marked for the worker to fetch.
func TestWebhookEventJob(t *testing.T) {
	html := `{"content":"` + strings.Repeat(`<p>a &amp; b</p>`, 120*1024/16) + `"}`
	huge := `{"content":"` + strings.Repeat("x", jobs.MaxMessageBytes) + `"}`
	tests := []struct {
		name    string
		data    string
		omitted bool
	}{
		{"small", `{"id":7}`, false},
		{"HTML-heavy 120 KB", html, false},
		{"over a message", huge, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := jobs.WebhookEvent(event(tt.data))
			if err != nil {
				t.Fatalf("WebhookEvent = %v", err)
			}
			msg, err := jobs.Encode(j)
			if err != nil || len(msg) > jobs.MaxMessageBytes {
				t.Fatalf("encoded job = %d bytes (%v), want at most %d", len(msg), err, jobs.MaxMessageBytes)
			}
			if strings.Contains(msg, `\u003c`) || strings.Contains(msg, `\u0026`) {
				t.Errorf("the job escapes HTML")
			}
			var ev webhook.Event
			if err := json.Unmarshal(j.Body, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.DataOmitted != tt.omitted || (len(ev.Data) == 0) != tt.omitted || ev.ActorUserID != 3 || j.ID != ev.Key() {
				t.Errorf("event in the job: omitted %t, data %d bytes, actor %d, id %q; want omitted %t", ev.DataOmitted, len(ev.Data), ev.ActorUserID, j.ID, tt.omitted)
			}
			if _, err := jobs.Parse(msg); err != nil {
				t.Errorf("the message does not parse back: %v", err)
			}
		})
	}
	if _, err := jobs.WebhookEvent(webhook.Event{ID: "x", CompanyID: 1}); err == nil {
		t.Errorf("WebhookEvent(no owner) = nil error, want the job refused")
	}
}

// FuzzWebhookEvent: whatever the event's data (valid JSON of any size and content), the job is
// valid, fits a message once encoded, and keeps its data whenever that fits.
func FuzzWebhookEvent(f *testing.F) {
	f.Add(`{"title":"<b>Big</b> & co"}`, 1)
	f.Add(`"\u2028"`, 20000)
	f.Add(`{"x":"é"}`, 100000)
	f.Fuzz(func(t *testing.T, data string, repeat int) {
		if !json.Valid([]byte(data)) || repeat < 1 || repeat > 200000 || len(data)*repeat > 1<<20 {
			return
		}
		arr := "[" + strings.TrimSuffix(strings.Repeat(data+",", repeat), ",") + "]"
		j, err := jobs.WebhookEvent(event(arr))
		if err != nil {
			t.Fatalf("WebhookEvent = %v", err)
		}
		msg, err := jobs.Encode(j)
		if err != nil || len(msg) > jobs.MaxMessageBytes {
			t.Fatalf("encoded job = %d bytes (%v), over %d", len(msg), err, jobs.MaxMessageBytes)
		}
		var ev webhook.Event
		if err := json.Unmarshal(j.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if !ev.DataOmitted && len(ev.Data) == 0 {
			t.Fatalf("data lost without DataOmitted")
		}
		if ev.DataOmitted && len(arr) < jobs.MaxMessageBytes/2 {
			t.Fatalf("a %d-byte event lost its data", len(arr))
		}
	})
}
