package dealnotes_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/examples/dealnotes"
	"github.com/pdkit/pipedrive-lambda-kit/pdkit/pdkittest"
)

const name = "Acme Notes"

// TestCreatedDealGetsOneNote: a user creates a deal at Pipedrive; the webhook reaches the app
// through the kit, which adds one note.
func TestCreatedDealGetsOneNote(t *testing.T) {
	st := pdkittest.Start(t, dealnotes.NewNamed(name))
	st.Install()
	deal := st.CreateDeal("Big deal")
	st.WaitFor("a note on the new deal", func() bool { return len(st.Notes(deal)) > 0 })
	st.Settle()
	if notes := st.Notes(deal); len(notes) != 1 || notes[0].Content != "Received by "+name {
		t.Errorf("notes of deal %d = %+v, want one %q", deal, notes, "Received by "+name)
	}
}

// TestNoteAfterFailures: Pipedrive answers the note's POST 429 (with Retry-After) or 500 the
// first time; the kit retries and the deal still ends with exactly one note.
func TestNoteAfterFailures(t *testing.T) {
	for _, f := range []pdkittest.Fault{
		{Method: http.MethodPost, Path: "/api/v1/notes", Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 1},
		{Method: http.MethodPost, Path: "/api/v1/notes", Status: http.StatusInternalServerError, Times: 1},
	} {
		t.Run(http.StatusText(f.Status), func(t *testing.T) {
			st := pdkittest.Start(t, dealnotes.NewNamed(name))
			st.Install()
			st.Fail(f)
			deal := st.CreateDeal("Busy deal")
			st.WaitFor("a note on the new deal", func() bool { return len(st.Notes(deal)) > 0 })
			st.Settle()
			if notes := st.Notes(deal); len(notes) != 1 {
				t.Errorf("notes of deal %d after a %d = %+v, want one", deal, f.Status, notes)
			}
			if got := st.Requests("POST /api/v1/notes"); got != 2 {
				t.Errorf("POST /api/v1/notes requests = %d, want 2 (the failed one and its retry)", got)
			}
			if n := st.DeadLetters(); n != 0 {
				t.Errorf("dead letters = %d, want 0", n)
			}
		})
	}
}
