// Package catchup turns Pipedrive's v2 lists of changed entities into webhook events, for the
// events an installation missed while its webhooks were deleted, banned or refused: the
// entity types a set of webhook subscriptions covers, the list request for a window
// (updated_since, updated_until, sort_by=update_time, cursor pages), the page's items, and
// one webhook.Event (CatchUp true) per item. It does no I/O; the worker's catch_up runner
// (internal/pdwork) calls Pipedrive and queues the events on the webhook_event path.
//
// Pipedrive's v2 list endpoints of deals, persons, organizations, activities and products take
// updated_since and updated_until (RFC 3339) and page with cursor and limit (at most 500),
// answering additional_data.next_cursor (null on the last page). Other objects (notes, leads,
// pipelines, …) have no such list and are not caught up; deletes cannot be listed at all.
package catchup

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// PageLimit is the items asked per page: the v2 lists' maximum.
const PageLimit = 500

// paths are the v2 list paths of the entity types that can be caught up, in the order they
// are caught up.
var paths = []struct{ entity, path string }{
	{"deal", "/api/v2/deals"},
	{"person", "/api/v2/persons"},
	{"organization", "/api/v2/organizations"},
	{"activity", "/api/v2/activities"},
	{"product", "/api/v2/products"},
}

// Subscription is one event_object/event_action pair an installation's webhooks deliver
// (pdwork.WebhookEvent), with v2's actions (create, change, delete or *).
type Subscription struct {
	Object, Action string
}

// Type is one entity type to catch up and which of its actions the webhooks deliver.
type Type struct {
	// Entity is the webhook object ("deal"); Path its v2 list ("/api/v2/deals").
	Entity, Path string
	// Create and Change say whether created and changed entities are caught up.
	Create, Change bool
}

// Types returns the entity types subs cover that can be caught up, in a fixed order, and the
// subscribed objects that cannot (sorted, without repeats; "*" expands to the listable ones).
// A subscription to deletes alone catches nothing up.
func Types(subs []Subscription) (types []Type, notListed []string) {
	seen := map[string]bool{}
	for _, p := range paths {
		t := Type{Entity: p.entity, Path: p.path}
		for _, s := range subs {
			if s.Object != p.entity && s.Object != "*" {
				continue
			}
			t.Create = t.Create || s.Action == webhook.ActionCreate || s.Action == "*"
			t.Change = t.Change || s.Action == webhook.ActionChange || s.Action == "*"
		}
		if t.Create || t.Change {
			types = append(types, t)
		}
		seen[p.entity] = true
	}
	for _, s := range subs {
		if s.Object != "*" && !seen[s.Object] && s.Action != webhook.ActionDelete {
			seen[s.Object] = true
			notListed = append(notListed, s.Object)
		}
	}
	return types, notListed
}

// TypeOf returns the listable type of entity among types.
func TypeOf(types []Type, entity string) (Type, bool) {
	for _, t := range types {
		if t.Entity == entity {
			return t, true
		}
	}
	return Type{}, false
}

// ListPath is the request for one page of t's entities with update_time in [since, until):
// since rounded down to the second (the API's precision, so a change in the same second as
// the last processed event is listed, and skipped by the entity clock if it was processed),
// oldest change first.
func ListPath(t Type, since, until time.Time, cursor string) string {
	q := url.Values{}
	q.Set("updated_since", since.UTC().Truncate(time.Second).Format(time.RFC3339))
	q.Set("updated_until", until.UTC().Truncate(time.Second).Format(time.RFC3339))
	q.Set("sort_by", "update_time")
	q.Set("sort_direction", "asc")
	q.Set("limit", strconv.Itoa(PageLimit))
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return t.Path + "?" + q.Encode()
}

// Item is one listed entity: its id, when it was added and last updated, and itself.
type Item struct {
	ID                  string
	AddTime, UpdateTime time.Time
	Raw                 json.RawMessage
}

// ErrMalformedPage is wrapped by ParsePage's errors.
var ErrMalformedPage = errors.New("catchup: malformed list page")

// ParsePage reads a v2 list answer: its items and additional_data.next_cursor ("" on the last
// page). An item without an id or update_time is an error (it cannot be ordered).
func ParsePage(body []byte) (items []Item, next string, err error) {
	var page struct {
		Data           []json.RawMessage `json:"data"`
		AdditionalData struct {
			NextCursor *string `json:"next_cursor"`
		} `json:"additional_data"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, "", fmt.Errorf("%w: not a list answer", ErrMalformedPage)
	}
	for i, raw := range page.Data {
		var f struct {
			ID         json.RawMessage `json:"id"`
			AddTime    string          `json:"add_time"`
			UpdateTime string          `json:"update_time"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, "", fmt.Errorf("%w: item %d is not an object", ErrMalformedPage, i)
		}
		id := strings.Trim(string(f.ID), `"`)
		if _, err := installation.ParseNumber(f.ID); err != nil && !isUUID(id) {
			return nil, "", fmt.Errorf("%w: item %d has no id", ErrMalformedPage, i)
		}
		upd, err := parseTime(f.UpdateTime)
		if err != nil {
			return nil, "", fmt.Errorf("%w: item %d: update_time: %v", ErrMalformedPage, i, err)
		}
		add, err := parseTime(f.AddTime)
		if err != nil {
			add = upd // no add_time: counts as a change
		}
		items = append(items, Item{ID: id, AddTime: add, UpdateTime: upd, Raw: raw})
	}
	if page.AdditionalData.NextCursor != nil {
		next = *page.AdditionalData.NextCursor
	}
	return items, next, nil
}

// parseTime reads v2's RFC 3339 or v1's "2006-01-02 15:04:05" (UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		return time.Time{}, errors.New("not a time")
	}
	return t, nil
}

// isUUID reports whether s looks like a lead's UUID.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !strings.ContainsRune("0123456789abcdefABCDEF", r):
			return false
		}
	}
	return true
}

// Event is the webhook event an item of t stands for when the webhooks missed everything of
// installation id after since: a create when it was added after since and t catches creates;
// else a change when it was changed after its creation and t catches changes; ok is false
// when neither. (The API shows add_time to the second: an entity added in the very second of
// the last processed event, after it, counts as changed.) The event's identity is the entity and its
// update_time, so the same item listed again is the same event (the worker runs it once),
// and its Timestamp is the update_time, which the entity clock compares with the webhook
// events' times.
func Event(t Type, it Item, id installation.ID, since time.Time) (ev webhook.Event, ok bool) {
	created := it.AddTime.After(since)
	action := ""
	switch {
	case created && t.Create:
		action = webhook.ActionCreate
	case t.Change && (!created || it.UpdateTime.After(it.AddTime)):
		action = webhook.ActionChange
	default:
		return webhook.Event{}, false
	}
	return webhook.Event{
		ID:        "catchup-" + t.Entity + "-" + it.ID + "-" + strconv.FormatInt(it.UpdateTime.Unix(), 10),
		Version:   "2.0",
		Action:    action,
		Entity:    t.Entity,
		EntityID:  it.ID,
		CompanyID: id.CompanyID,
		UserID:    id.UserID,
		Timestamp: it.UpdateTime,
		Data:      it.Raw,
		CatchUp:   true,
	}, true
}
