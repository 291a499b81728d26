package pdwork_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// TestEventTooLargeForAJobIsFetched: an event queued without its data (DataOmitted) reaches the
// app's handler with the entity as the API returns it (v2 endpoint), fetched through the
// installation's Session; an entity gone since reaches it with no data.
func TestEventTooLargeForAJobIsFetched(t *testing.T) {
	s, sim := sessions(t)
	store := s.Installations.(*tokenstore.Store)
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
	ev, deal, err := sim.ActAsUser(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "Huge deal"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []webhook.Event
	r := &pdwork.WebhookEvents{Sessions: s, Entities: store, Handler: pdwork.EventHandlerFunc(func(_ context.Context, ev webhook.Event, _ *pdwork.Client) error {
		got = append(got, ev)
		return nil
	})}
	run := func(entityID string) worker.Verdict {
		j, err := jobs.WebhookEvent(webhook.Event{ID: "big-" + entityID, Version: "2.0", Action: webhook.ActionCreate, Entity: "deal", EntityID: entityID,
			CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID, Timestamp: time.Now(), DataOmitted: true})
		if err != nil {
			t.Fatal(err)
		}
		return r.Run(t.Context(), j)
	}
	if v := run(strconv.FormatInt(ev.EntityID, 10)); v.Outcome != worker.OutcomeSucceeded {
		t.Fatalf("Run(data omitted) = %+v, want succeeded", v)
	}
	var data map[string]any
	if len(got) != 1 || json.Unmarshal(got[0].Data, &data) != nil || data["title"] != deal["title"] {
		t.Fatalf("handler got %d events, data %s; want the deal as the API returns it", len(got), got[0].Data)
	}
	if c := sim.Counters().APIByRoute["GET /api/v2/deals/{id}"]; c != 1 {
		t.Errorf("GET /api/v2/deals/{id} calls = %d, want 1 (routes %v)", c, sim.Counters().APIByRoute)
	}
	if v := run("999999"); v.Outcome != worker.OutcomeSucceeded || len(got) != 2 || len(got[1].Data) != 0 {
		t.Errorf("Run(deal gone) = %+v, data %q; want succeeded with no data", v, got[len(got)-1].Data)
	}
}

// TestRegisterWebhooksRecordsOwners: every webhook register_webhooks creates or finds is
// recorded with the installation that registered it, so a v1 delivery (no owner in the
// payload) is routed by its webhook id.
func TestRegisterWebhooksRecordsOwners(t *testing.T) {
	r, sim, in := registerWebhooks(t, pdwork.WebhookEvent{Object: "deal", Action: "*"}, pdwork.WebhookEvent{Object: "person", Action: "create"})
	store := r.Sessions.Installations.(*tokenstore.Store)
	r.Owners = store
	for range 2 { // created, then found existing
		if v := r.Run(t.Context(), registerJob()); v.Outcome != worker.OutcomeSucceeded {
			t.Fatalf("Run = %+v", v)
		}
	}
	hooks := sim.Webhooks(pdsim.DefaultUserID)
	if len(hooks) != 2 {
		t.Fatalf("webhooks = %d, want 2", len(hooks))
	}
	for _, h := range hooks {
		owner, err := store.WebhookOwner(t.Context(), pdsim.DefaultCompanyID, strconv.FormatInt(h.ID, 10))
		if err != nil || owner != (installation.ID{CompanyID: in.ID.CompanyID, UserID: in.ID.UserID}) {
			t.Errorf("WebhookOwner(%d) = %v, %v; want %v", h.ID, owner, err, in.ID)
		}
	}
}

// TestFutureTimestampCannotBlockLaterChanges: a change stamped a day ahead (a job not from the
// receiver, which clamps already) is ordered at the worker's clock, so the entity's next real
// change is not skipped as stale.
func TestFutureTimestampCannotBlockLaterChanges(t *testing.T) {
	s, _ := sessions(t)
	store := s.Installations.(*tokenstore.Store)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var ran []string
	r := &pdwork.WebhookEvents{Sessions: s, Entities: store, Now: func() time.Time { return now },
		Handler: pdwork.EventHandlerFunc(func(_ context.Context, ev webhook.Event, _ *pdwork.Client) error {
			ran = append(ran, ev.ID)
			return nil
		})}
	change := func(id string, at time.Time) worker.Verdict {
		j, err := jobs.WebhookEvent(webhook.Event{ID: id, Version: "2.0", Action: webhook.ActionChange, Entity: "deal", EntityID: "5",
			CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID, Timestamp: at})
		if err != nil {
			t.Fatal(err)
		}
		return r.Run(t.Context(), j)
	}
	if v := change("forged", now.Add(24*time.Hour)); v.Outcome != worker.OutcomeSucceeded {
		t.Fatalf("Run(future change) = %+v, want succeeded", v)
	}
	if v := change("real", now.Add(time.Second)); v.Outcome != worker.OutcomeSucceeded {
		t.Fatalf("Run(the next real change) = %+v, want succeeded (not stale)", v)
	}
	if v := change("late", now.Add(-time.Minute)); v.Outcome != worker.OutcomeSkipped {
		t.Errorf("Run(an older change) = %+v, want skipped as stale", v)
	}
	if len(ran) != 2 {
		t.Errorf("handler ran for %v, want forged and real", ran)
	}
}
