package catchup_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/catchup"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

func TestTypes(t *testing.T) {
	tests := []struct {
		name          string
		subs          []catchup.Subscription
		want          string // entity:create/change, …
		wantNotListed string
	}{
		{"deal.*", []catchup.Subscription{{"deal", "*"}}, "deal:true/true", ""},
		{"create and change of two objects", []catchup.Subscription{{"person", "change"}, {"deal", "create"}},
			"deal:true/false,person:false/true", ""},
		{"deletes cannot be listed", []catchup.Subscription{{"deal", "delete"}}, "", ""},
		{"everything", []catchup.Subscription{{"*", "*"}},
			"deal:true/true,person:true/true,organization:true/true,activity:true/true,product:true/true", ""},
		{"objects without a change list", []catchup.Subscription{{"note", "*"}, {"lead", "create"}, {"note", "change"}, {"deal", "change"}},
			"deal:false/true", "note,lead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			types, notListed := catchup.Types(tt.subs)
			var got []string
			for _, ty := range types {
				got = append(got, ty.Entity+":"+boolText(ty.Create)+"/"+boolText(ty.Change))
				if !strings.HasPrefix(ty.Path, "/api/v2/") {
					t.Errorf("%s path = %q, want a v2 list", ty.Entity, ty.Path)
				}
			}
			if g := strings.Join(got, ","); g != tt.want {
				t.Errorf("Types(%v) = %q, want %q", tt.subs, g, tt.want)
			}
			if g := strings.Join(notListed, ","); g != tt.wantNotListed {
				t.Errorf("Types(%v) not listed = %q, want %q", tt.subs, g, tt.wantNotListed)
			}
		})
	}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestListPath(t *testing.T) {
	deals := catchup.Type{Entity: "deal", Path: "/api/v2/deals", Create: true}
	since := time.Date(2026, 11, 27, 12, 0, 0, 734_000_000, time.UTC)
	until := since.Add(72 * time.Hour)
	p := catchup.ListPath(deals, since, until, "abc=")
	path, raw, _ := strings.Cut(p, "?")
	q, err := url.ParseQuery(raw)
	if path != "/api/v2/deals" || err != nil {
		t.Fatalf("ListPath = %q, want /api/v2/deals?…", p)
	}
	want := map[string]string{"updated_since": "2026-11-27T12:00:00Z", "updated_until": "2026-11-30T12:00:00Z",
		"sort_by": "update_time", "sort_direction": "asc", "limit": "500", "cursor": "abc="}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("ListPath %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q := catchup.ListPath(deals, since, until, ""); strings.Contains(q, "cursor") {
		t.Errorf("first page ListPath = %q, want no cursor", q)
	}
}

func TestParsePage(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantIDs  string
		wantNext string
		wantErr  bool
	}{
		{"v2 page with a cursor", `{"success":true,"data":[{"id":12,"add_time":"2026-11-27T12:00:00Z","update_time":"2026-11-28T08:00:00Z","title":"x"}],"additional_data":{"next_cursor":"c2"}}`,
			"12", "c2", false},
		{"last page", `{"success":true,"data":[{"id":"13","update_time":"2026-11-28T08:00:00Z"}],"additional_data":{"next_cursor":null}}`, "13", "", false},
		{"empty", `{"success":true,"data":[],"additional_data":{"next_cursor":null}}`, "", "", false},
		{"v1 times", `{"data":[{"id":1,"add_time":"2026-11-27 12:00:00","update_time":"2026-11-27 13:00:00"}]}`, "1", "", false},
		{"lead uuid", `{"data":[{"id":"adf21080-0e10-11eb-879b-05d71fb426ec","update_time":"2026-11-27T13:00:00Z"}]}`, "adf21080-0e10-11eb-879b-05d71fb426ec", "", false},
		{"no update_time", `{"data":[{"id":1}]}`, "", "", true},
		{"no id", `{"data":[{"update_time":"2026-11-27T13:00:00Z"}]}`, "", "", true},
		{"an id that is no id", `{"data":[{"id":"../x","update_time":"2026-11-27T13:00:00Z"}]}`, "", "", true},
		{"not JSON", `<html>`, "", "", true},
		{"item not an object", `{"data":[1]}`, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, next, err := catchup.ParsePage([]byte(tt.body))
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, catchup.ErrMalformedPage)) {
				t.Fatalf("ParsePage error = %v, want error %t (ErrMalformedPage)", err, tt.wantErr)
			}
			var ids []string
			for _, it := range items {
				ids = append(ids, it.ID)
			}
			if g := strings.Join(ids, ","); g != tt.wantIDs || next != tt.wantNext {
				t.Errorf("ParsePage = %q, next %q; want %q, %q", g, next, tt.wantIDs, tt.wantNext)
			}
		})
	}
}

func TestEvent(t *testing.T) {
	id := installation.ID{CompanyID: 3408256, UserID: 5206648}
	since := time.Date(2026, 11, 27, 12, 0, 0, 500_000_000, time.UTC)
	at := func(d time.Duration) time.Time { return since.Truncate(time.Second).Add(d) }
	both := catchup.Type{Entity: "deal", Path: "/api/v2/deals", Create: true, Change: true}
	createOnly := catchup.Type{Entity: "deal", Path: "/api/v2/deals", Create: true}
	changeOnly := catchup.Type{Entity: "deal", Path: "/api/v2/deals", Change: true}
	tests := []struct {
		name       string
		t          catchup.Type
		add, upd   time.Duration
		wantAction string // "" = no event
	}{
		{"added after since", both, time.Hour, 2 * time.Hour, webhook.ActionCreate},
		{"added before since, changed after", both, -time.Hour, time.Hour, webhook.ActionChange},
		{"added in since's second: a change", both, 0, time.Hour, webhook.ActionChange},
		{"create only: an old entity changed", createOnly, -time.Hour, time.Hour, ""},
		{"change only: added and never changed", changeOnly, time.Hour, time.Hour, ""},
		{"change only: added and changed", changeOnly, time.Hour, 2 * time.Hour, webhook.ActionChange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := catchup.Item{ID: "12", AddTime: at(tt.add), UpdateTime: at(tt.upd), Raw: []byte(`{"id":12}`)}
			ev, ok := catchup.Event(tt.t, it, id, since)
			if tt.wantAction == "" {
				if ok {
					t.Errorf("Event = %+v, want none", ev)
				}
				return
			}
			if !ok || ev.Action != tt.wantAction || !ev.CatchUp || ev.Installation() != id || ev.Entity != "deal" || ev.EntityID != "12" ||
				!ev.Timestamp.Equal(it.UpdateTime) || string(ev.Data) != `{"id":12}` || ev.Version != "2.0" {
				t.Errorf("Event = %+v, %t; want a %s catch-up of deal 12 at its update_time", ev, ok, tt.wantAction)
			}
			// The same item listed again is the same event; a later change is another.
			again, _ := catchup.Event(tt.t, it, id, since)
			it.UpdateTime = it.UpdateTime.Add(time.Second)
			later, _ := catchup.Event(tt.t, it, id, since)
			if again.Key() != ev.Key() || later.Key() == ev.Key() {
				t.Errorf("keys %q, %q, %q: want the same item to give the same key and a later change another", ev.Key(), again.Key(), later.Key())
			}
		})
	}
}
