package catchup_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/catchup"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// FuzzParsePage: any answer body either parses into items each with an id and an update_time
// (whose event, when there is one, is a catch-up of the installation at that time) or fails
// with ErrMalformedPage; it never panics.
func FuzzParsePage(f *testing.F) {
	for _, seed := range []string{
		`{"success":true,"data":[{"id":12,"add_time":"2026-11-27T12:00:00Z","update_time":"2026-11-28T08:00:00Z"}],"additional_data":{"next_cursor":"c2"}}`,
		`{"data":[{"id":"adf21080-0e10-11eb-879b-05d71fb426ec","update_time":"2026-11-27 13:00:00"}],"additional_data":{"next_cursor":null}}`,
		`{"data":[{"id":1e3,"update_time":"x"}]}`, `{"data":null}`, `[]`, `<html>`, ``,
	} {
		f.Add([]byte(seed))
	}
	id := installation.ID{CompanyID: 1, UserID: 2}
	deals := catchup.Type{Entity: "deal", Path: "/api/v2/deals", Create: true, Change: true}
	since := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		items, _, err := catchup.ParsePage(body)
		if err != nil {
			if !errors.Is(err, catchup.ErrMalformedPage) || items != nil {
				t.Fatalf("ParsePage error = %v with %d items, want ErrMalformedPage and none", err, len(items))
			}
			return
		}
		for _, it := range items {
			if it.ID == "" || it.UpdateTime.IsZero() {
				t.Fatalf("item = %+v, want an id and an update_time", it)
			}
			if ev, ok := catchup.Event(deals, it, id, since); ok && (!ev.CatchUp || ev.EntityID != it.ID || !ev.Timestamp.Equal(it.UpdateTime) || ev.Installation() != id) {
				t.Fatalf("Event(%+v) = %+v, want a catch-up of the item", it, ev)
			}
		}
	})
}
