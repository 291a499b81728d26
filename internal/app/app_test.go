package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/app"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// simClient is the Client a handler gets, without the worker: straight to the simulator with
// one user's token.
type simClient struct {
	api          *pdapi.Client
	domain, tok  string
	posts, lists int
}

func (c *simClient) Do(ctx context.Context, method, path string, body []byte) (pdapi.Response, error) {
	switch method {
	case http.MethodPost:
		c.posts++
	case http.MethodGet:
		c.lists++
	}
	return c.api.Do(ctx, method, c.domain, path, c.tok, body)
}

var _ app.Client = (*simClient)(nil)

func newSim(t *testing.T) (*pdsimtest.TestServer, *simClient) {
	t.Helper()
	sim := pdsimtest.New(t, pdsim.Config{})
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	return sim, &simClient{api: &pdapi.Client{AllowLoopback: true, HTTP: sim.HTTP.Client()}, domain: tok.APIDomain, tok: tok.AccessToken}
}

// notes lists the contents of a deal's notes at the simulator.
func notes(t *testing.T, c *simClient, dealID int64) []string {
	t.Helper()
	resp, err := c.api.Do(t.Context(), http.MethodGet, c.domain, "/api/v1/notes?deal_id="+strconv.FormatInt(dealID, 10), c.tok, nil)
	if err != nil {
		t.Fatalf("list notes: %v", err)
	}
	var page struct{ Data []struct{ Content string } }
	if err := json.Unmarshal(resp.Body, &page); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range page.Data {
		out = append(out, n.Content)
	}
	return out
}

func dealEvent(action string, id int64) webhook.Event {
	return webhook.Event{ID: "ev-" + action, Version: "2.0", Action: action, Entity: "deal", EntityID: strconv.FormatInt(id, 10),
		CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
}

func TestDealNotesAddsOneNotePerCreatedDeal(t *testing.T) {
	sim, c := newSim(t)
	created, _, err := sim.ActAsUser(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "Big deal"}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.EntityID
	h := app.New(app.Config{ExampleApp: true, AppName: "Acme Notes"})

	for i := range 3 { // the event handled, then run again (a retry after a failure elsewhere)
		if err := h.HandleEvent(t.Context(), dealEvent(webhook.ActionCreate, id), c); err != nil {
			t.Fatalf("HandleEvent #%d = %v", i+1, err)
		}
	}
	if got := notes(t, c, id); len(got) != 1 || got[0] != "Received by Acme Notes" {
		t.Errorf("notes of deal %d = %q, want one \"Received by Acme Notes\"", id, got)
	}
	if c.posts != 1 {
		t.Errorf("POST calls = %d, want 1 (the runs after the first find the note)", c.posts)
	}

	// Other events write nothing.
	c.posts = 0
	for _, ev := range []webhook.Event{
		dealEvent(webhook.ActionChange, id), dealEvent(webhook.ActionDelete, id),
		{ID: "p", Action: webhook.ActionCreate, Entity: "person", EntityID: "1"},
		{ID: "x", Action: webhook.ActionCreate, Entity: "deal", EntityID: "not-a-number"},
	} {
		if err := h.HandleEvent(t.Context(), ev, c); err != nil {
			t.Errorf("HandleEvent(%s %s) = %v, want nil", ev.Entity, ev.Action, err)
		}
	}
	if c.posts != 0 {
		t.Errorf("POST calls for other events = %d, want 0", c.posts)
	}
}

// TestDealNotesReturnsTheClientsError: a failed call comes back wrapped, so the worker can
// read Pipedrive's decision from it, and nothing was written.
func TestDealNotesReturnsTheClientsError(t *testing.T) {
	sim, c := newSim(t)
	created, _, err := sim.ActAsUser(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "Big deal"}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.EntityID
	sim.Inject(pdsim.Fault{Method: "POST", Path: "/api/v1/notes", Status: 429, Times: 1, Header: http.Header{"Retry-After": {"7"}}})
	h := &app.DealNotes{AppName: "Acme"}
	err = h.HandleEvent(t.Context(), dealEvent(webhook.ActionCreate, id), c)
	var pe *pderrors.Error
	if !errors.As(err, &pe) || pderrors.DecisionOf(err).Action != pderrors.Retry {
		t.Fatalf("HandleEvent under a 429 = %v, want the client's *pderrors.Error (retry)", err)
	}
	if got := notes(t, c, id); len(got) != 0 {
		t.Errorf("notes after the 429 = %q, want none", got)
	}
	if err := h.HandleEvent(t.Context(), dealEvent(webhook.ActionCreate, id), c); err != nil {
		t.Fatalf("HandleEvent retried = %v", err)
	}
	if got := notes(t, c, id); len(got) != 1 {
		t.Errorf("notes after the retry = %q, want one", got)
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    app.Config
		wantErr bool
	}{
		{"unset", nil, app.Config{AppName: app.DefaultAppName}, false},
		{"example on", map[string]string{"EXAMPLE_APP": "true", "APP_NAME": "Acme Notes"}, app.Config{ExampleApp: true, AppName: "Acme Notes"}, false},
		{"example off", map[string]string{"EXAMPLE_APP": "false"}, app.Config{AppName: app.DefaultAppName}, false},
		{"not a boolean", map[string]string{"EXAMPLE_APP": "yes"}, app.Config{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := app.ConfigFromEnv(func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ConfigFromEnv = %+v, %v; want %+v (error %t)", got, err, tt.want, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, app.ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

// TestNewWithoutTheExample: the default handler does nothing and calls nothing.
func TestNewWithoutTheExample(t *testing.T) {
	_, c := newSim(t)
	if err := app.New(app.Config{}).HandleEvent(t.Context(), dealEvent(webhook.ActionCreate, 1), c); err != nil || c.posts+c.lists != 0 {
		t.Errorf("HandleEvent = %v with %d calls, want nil and none", err, c.posts+c.lists)
	}
}
