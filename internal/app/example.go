package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// DealNotes is the worked example: when a deal is created, it adds the note
// "Received by <AppName>" to it through the API (POST /api/v1/notes). One note per deal:
// the kit runs each event once however often Pipedrive delivers it, and DealNotes itself
// looks before it writes, because a call can fail after Pipedrive did the work (a timeout, a
// 500 sent after the note was saved) and the retry must not add a second note.
type DealNotes struct {
	// AppName goes into the note.
	AppName string
}

// NoteContent is the note DealNotes adds.
func (d *DealNotes) NoteContent() string { return "Received by " + d.AppName }

// HandleEvent adds the note to a created deal that lacks it; other events are ignored.
func (d *DealNotes) HandleEvent(ctx context.Context, ev webhook.Event, api Client) error {
	if ev.Entity != "deal" || ev.Action != webhook.ActionCreate {
		return nil
	}
	dealID, err := strconv.ParseInt(ev.EntityID, 10, 64)
	if err != nil || dealID <= 0 {
		return nil // not a deal id Pipedrive would send: nothing to attach a note to
	}
	content := d.NoteContent()
	has, err := hasNote(ctx, api, dealID, content)
	if err != nil {
		return err
	}
	if has {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"deal_id": dealID, "content": content}) // cannot fail
	if _, err := api.Do(ctx, http.MethodPost, "/api/v1/notes", body); err != nil {
		return fmt.Errorf("add note to deal %d: %w", dealID, err)
	}
	return nil
}

// hasNote reports whether deal dealID has a note with exactly content (the first page of its
// notes: a deal just created has few).
func hasNote(ctx context.Context, api Client, dealID int64, content string) (bool, error) {
	resp, err := api.Do(ctx, http.MethodGet, "/api/v1/notes?deal_id="+strconv.FormatInt(dealID, 10)+"&limit=100", nil)
	if err != nil {
		return false, fmt.Errorf("list notes of deal %d: %w", dealID, err)
	}
	var page struct {
		Data []struct {
			Content string `json:"content"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &page); err != nil {
		return false, fmt.Errorf("list notes of deal %d: malformed answer: %w", dealID, err)
	}
	for _, n := range page.Data {
		if n.Content == content {
			return true, nil
		}
	}
	return false, nil
}
