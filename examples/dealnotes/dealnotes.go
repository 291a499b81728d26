// Package dealnotes is the worked example of an app built on the Pipedrive Lambda kit: when a
// deal is created, it adds the note "Received by <app name>" to it. It uses only the kit's
// public API (package pdkit); its four functions' main packages start it.
package dealnotes

import (
	"cmp"
	"context"
	"fmt"
	"os"

	"github.com/pdkit/pipedrive-lambda-kit/pdkit"
)

// DefaultName names the app when APP_NAME (template.yaml's AppName parameter) is empty.
const DefaultName = "Pipedrive Lambda Kit"

// New is the app: Notes on created deals, named by APP_NAME.
func New() *pdkit.App {
	return NewNamed(cmp.Or(os.Getenv("APP_NAME"), DefaultName))
}

// NewNamed is the app with the given name in its notes.
func NewNamed(name string) *pdkit.App {
	mux := pdkit.NewEventMux()
	mux.Handle("deal.create", &Notes{AppName: name})
	return &pdkit.App{Events: mux}
}

// Notes adds the note "Received by <AppName>" to each created deal, once. The kit runs each
// event once however often Pipedrive delivers it; Notes itself looks before it writes, because
// a call can fail after Pipedrive did the work (a timeout, a 500 sent after the note was saved)
// and the retry must not add a second note. That look is what makes its POST RetrySafe.
type Notes struct {
	// AppName goes into the note.
	AppName string
}

// Content is the note Notes adds.
func (n *Notes) Content() string { return "Received by " + n.AppName }

// HandleEvent adds the note to a created deal that lacks it.
func (n *Notes) HandleEvent(ctx context.Context, ev pdkit.Event, c *pdkit.Client) error {
	dealID := ev.EntityIDInt()
	if dealID == 0 {
		return nil // not a deal id Pipedrive would send: nothing to attach a note to
	}
	has, err := n.hasNote(ctx, c, dealID)
	if err != nil || has {
		return err
	}
	body := map[string]any{"deal_id": dealID, "content": n.Content()}
	if _, err := c.Post(ctx, "/api/v1/notes", body, pdkit.RetrySafe()); err != nil {
		return fmt.Errorf("add note to deal %d: %w", dealID, err)
	}
	return nil
}

// hasNote reports whether the deal has the note already (the first page of its notes: a deal
// just created has few).
func (n *Notes) hasNote(ctx context.Context, c *pdkit.Client, dealID int64) (bool, error) {
	resp, err := c.Get(ctx, fmt.Sprintf("/api/v1/notes?deal_id=%d&limit=100", dealID))
	if err != nil {
		return false, fmt.Errorf("list notes of deal %d: %w", dealID, err)
	}
	var page struct {
		Data []struct {
			Content string `json:"content"`
		} `json:"data"`
	}
	if err := resp.Decode(&page); err != nil {
		return false, fmt.Errorf("list notes of deal %d: %w", dealID, err)
	}
	for _, note := range page.Data {
		if note.Content == n.Content() {
			return true, nil
		}
	}
	return false, nil
}
