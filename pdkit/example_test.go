package pdkit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/pdkit"
)

// An app is a value: event handlers, hooks and job kinds. Each of its four functions' main
// starts it with one call, e.g. functions/apicall/main.go:
//
//	func main() { pdkit.StartWorker(newApp()) }
func ExampleApp() {
	mux := pdkit.NewEventMux()
	mux.HandleFunc("deal.create", func(ctx context.Context, ev pdkit.Event, c *pdkit.Client) error {
		// Queue a follow-up for tomorrow, once per deal however often this runs.
		return c.Enqueue(ctx, pdkit.Job{Kind: "follow_up", Key: "deal-" + ev.EntityID,
			Payload: json.RawMessage(`{"deal_id":` + ev.EntityID + `}`), NotBefore: time.Now().Add(24 * time.Hour)})
	})
	app := &pdkit.App{
		Events: mux,
		OnInstall: func(ctx context.Context, c *pdkit.Client) error {
			log.Printf("installed by %s", c.Installation())
			return nil
		},
		OnUninstall: func(ctx context.Context, in pdkit.Installation) error {
			log.Printf("uninstalled by %s: forget what we keep for it", in)
			return nil
		},
		Jobs: map[string]pdkit.JobKind{
			"follow_up": {Run: func(ctx context.Context, job pdkit.Job, c *pdkit.Client) error {
				var p struct{ DealID int64 }
				if err := json.Unmarshal(job.Payload, &p); err != nil {
					return err
				}
				_, err := c.Post(ctx, "/api/v2/activities", map[string]any{"deal_id": p.DealID, "subject": "Follow up"})
				return err
			}},
		},
	}
	_, pattern := app.Events.(*pdkit.EventMux).Handler(pdkit.Event{Entity: "deal", Action: pdkit.ActionCreate})
	fmt.Println("a created deal runs", pattern)
	// Output: a created deal runs deal.create
}

// Patterns are "entity.action" as in the WebhookEvents template parameter; the most specific
// one wins and an event no pattern matches is acknowledged.
func ExampleEventMux() {
	mux := pdkit.NewEventMux()
	noop := func(context.Context, pdkit.Event, *pdkit.Client) error { return nil }
	mux.HandleFunc("deal.create", noop)
	mux.HandleFunc("deal.*", noop)
	mux.HandleFunc("*.delete", noop)
	for _, ev := range []pdkit.Event{
		{Entity: "deal", Action: pdkit.ActionCreate},
		{Entity: "deal", Action: pdkit.ActionDelete},
		{Entity: "person", Action: pdkit.ActionDelete},
		{Entity: "person", Action: pdkit.ActionChange},
	} {
		_, pattern := mux.Handler(ev)
		fmt.Printf("%s.%s -> %q\n", ev.Entity, ev.Action, pattern)
	}
	// Output:
	// deal.create -> "deal.create"
	// deal.delete -> "deal.*"
	// person.delete -> "*.delete"
	// person.change -> ""
}

// A handler sees the installation the event belongs to (whose tokens its Client uses) and the
// user who made the change, who is often a colleague.
func ExampleEventHandlerFunc() {
	h := pdkit.EventHandlerFunc(func(ctx context.Context, ev pdkit.Event, c *pdkit.Client) error {
		fmt.Printf("deal %d created by user %d, for installation %s\n", ev.EntityIDInt(), ev.ActorUserID, ev.Installation)
		return nil
	})
	ev := pdkit.Event{Entity: "deal", Action: pdkit.ActionCreate, EntityID: "42",
		Installation: pdkit.Installation{CompanyID: 3408256, UserID: 5206648}, ActorUserID: 5206649}
	if err := h.HandleEvent(context.Background(), ev, nil); err != nil {
		fmt.Println(err)
	}
	// Output: deal 42 created by user 5206649, for installation 3408256:5206648
}

// A POST whose answer is lost may have created something: by default the kit dead-letters it
// as outcome_unknown rather than send it again. A handler that looks before it writes marks
// its POST RetrySafe.
func ExampleRetrySafe() {
	addNote := func(ctx context.Context, c *pdkit.Client, dealID int64, content string) error {
		resp, err := c.Get(ctx, fmt.Sprintf("/api/v1/notes?deal_id=%d&limit=100", dealID))
		if err != nil {
			return fmt.Errorf("list notes: %w", err)
		}
		var page struct{ Data []struct{ Content string } }
		if err := resp.Decode(&page); err != nil {
			return err
		}
		for _, n := range page.Data {
			if n.Content == content {
				return nil // added by an earlier run
			}
		}
		_, err = c.Do(ctx, http.MethodPost, "/api/v1/notes", map[string]any{"deal_id": dealID, "content": content}, pdkit.RetrySafe())
		return err
	}
	_ = addNote
}
