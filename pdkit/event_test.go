package pdkit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

func TestActionsAreTheReceivers(t *testing.T) {
	for got, want := range map[string]string{ActionCreate: webhook.ActionCreate, ActionChange: webhook.ActionChange, ActionDelete: webhook.ActionDelete} {
		if got != want {
			t.Errorf("pdkit action %q, want the receiver's %q", got, want)
		}
	}
}

// TestEventOf: every field the receiver parsed reaches the app's Event.
func TestEventOf(t *testing.T) {
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	in := webhook.Event{ID: "e1", Version: "2.0", Action: "change", Entity: "deal", EntityID: "42", CompanyID: 7, UserID: 9,
		ActorUserID: 11, MergedToID: "42", MergedFromID: "41", CatchUp: true,
		Timestamp: at, Data: json.RawMessage(`{"id":42}`), Previous: json.RawMessage(`{"title":"a"}`)}
	got := eventOf(in)
	if got.ID != "e1" || got.Action != ActionChange || got.Entity != "deal" || got.EntityID != "42" || got.EntityIDInt() != 42 ||
		got.Installation != (Installation{CompanyID: 7, UserID: 9}) || got.ActorUserID != 11 || !got.Timestamp.Equal(at) ||
		got.MergedToID != "42" || got.MergedFromID != "41" || !got.CatchUp ||
		string(got.Data) != `{"id":42}` || string(got.Previous) != `{"title":"a"}` {
		t.Errorf("eventOf(%+v) = %+v", in, got)
	}
}
