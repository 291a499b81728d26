// Package webhook reads Pipedrive's webhook deliveries: it authenticates the HTTP Basic
// credentials Pipedrive sends, and turns a v2 payload (or a v1 payload, mapped to the same shape)
// into an Event with a stable identity, so a delivery retried by Pipedrive (same event, next
// attempt) is recognised as the same event. It does no I/O: the receiver function stores the
// identity and enqueues the event; the worker hands it to the app's handler.
//
// v2 (the default since 2025): {"meta":{"action":"create|change|delete","entity":"deal",
// "entity_id":…,"company_id":…,"user_id":…,"webhook_owner_id":…,"id":"<event uuid>",
// "correlation_id":…,"timestamp":"2025-04-15T15:41:43.123Z","version":"2.0","webhook_id":…,
// "attempt":1,"merged_to_id"|"merged_from_id":…,…},"data":{…},"previous":{…}}. Ids come as
// strings (Pipedrive's examples) or numbers (captures): both are read.
//
// Who is who: meta.user_id is the user who MADE the change (a colleague of the installing user,
// most of the time in a team: Event.ActorUserID); meta.webhook_owner_id is the user whose
// webhook it is, for an app the user whose installation registered it (Event.UserID). The event
// belongs to the installation (company_id, webhook_owner_id). v1 payloads name no owner: Parse
// leaves UserID zero and the receiver finds the owner from the webhook id recorded when the
// webhook was registered.
// v1: {"v":1,"event":"updated.deal","meta":{"v":1,"action":"updated","object":"deal","id":123,
// "company_id":…,"user_id":…,"timestamp":1597000000,"timestamp_micro":…,"webhook_id":"…"},
// "current":{…},"previous":{…},"retry":0}; v1 actions added/updated/deleted/merged map to
// create/change/delete/change.
package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// MaxBody is the largest delivery accepted. Pipedrive's payloads carry one entity (with its
// custom fields) and its previous values: a few KiB, rarely tens. The cap also keeps an event
// inside an SQS message (256 KiB) with room for the job envelope.
const MaxBody = 128 << 10

// The actions of an Event (v2's names; v1's are mapped to them).
const (
	ActionCreate = "create"
	ActionChange = "change"
	ActionDelete = "delete"
)

// Errors of Parse; each is wrapped with the detail of what is wrong.
var (
	// ErrMalformed: not a JSON object of either version, or a required meta field is missing
	// or of the wrong type.
	ErrMalformed = errors.New("webhook: malformed payload")
	// ErrTooLarge: the body is longer than MaxBody.
	ErrTooLarge = errors.New("webhook: payload too large")
)

// Event is one Pipedrive change, as the app's handler receives it. Data and Previous are the
// entity now and the changed fields' earlier values (v1's "current" is Data); either may be
// null (a delete has no Data in v2).
type Event struct {
	// ID is the event's identity across retried deliveries: v2's meta.id; for v1, which has no
	// event id, the object, id, action and microsecond timestamp together.
	ID string `json:"id"`
	// Version is "2.0" or "1.0".
	Version string `json:"version"`
	// Action is ActionCreate, ActionChange or ActionDelete.
	Action string `json:"action"`
	// Entity is the object type: deal, person, organization, activity, note, lead, …
	Entity string `json:"entity"`
	// EntityID is the entity's id as text (numbers for most entities, a UUID for leads).
	EntityID string `json:"entity_id"`
	// CompanyID and UserID name the installation the event belongs to: the company and the
	// webhook's owner (v2 meta.webhook_owner_id; for v1 the user whose installation registered
	// the webhook). Parse leaves UserID zero when the payload names no owner (v1).
	CompanyID int64 `json:"company_id"`
	UserID    int64 `json:"user_id"`
	// ActorUserID is the user who made the change (meta.user_id): the installing user or a
	// colleague; zero when Pipedrive names nobody.
	ActorUserID int64 `json:"actor_user_id,omitempty"`
	// MergedToID is set on the delete event of an entity merged into another (v2
	// meta.merged_to_id: the surviving entity's id); MergedFromID on the change event of the
	// surviving entity (v2 meta.merged_from_id: the merged-away entity's id). Both are ids as
	// text, empty when the event is not part of a merge.
	MergedToID   string `json:"merged_to_id,omitempty"`
	MergedFromID string `json:"merged_from_id,omitempty"`
	// CatchUp marks an event the kit made itself after it missed Pipedrive's deliveries (a
	// webhook found deleted or banned, or an operator's catch-up): it was read from a v2 list
	// of entities changed since the last event processed, so Data is the entity as listed,
	// Previous is empty, Timestamp is the entity's update_time, and a delete is never caught
	// up. It is deduplicated against the webhook events by the entity's last processed change.
	CatchUp bool `json:"catch_up,omitempty"`
	// DataOmitted is set when the event was too large for a job and was queued without Data
	// and Previous; the worker fetches the entity again before the app's handler sees it
	// (Data is then the entity as the API returns it now, Previous stays empty).
	DataOmitted bool `json:"data_omitted,omitempty"`
	// Timestamp is when the change happened at Pipedrive; it orders changes of one entity.
	Timestamp time.Time `json:"timestamp"`
	// WebhookID is the webhook that delivered it; Attempt counts deliveries (1 = first).
	WebhookID string `json:"webhook_id,omitempty"`
	Attempt   int    `json:"attempt,omitempty"`
	// CorrelationID ties the events of one user action together (v2 only).
	CorrelationID string          `json:"correlation_id,omitempty"`
	Data          json.RawMessage `json:"data,omitempty"`
	Previous      json.RawMessage `json:"previous,omitempty"`
}

// Installation is the installation the event belongs to: the company and the webhook's owner.
func (e Event) Installation() installation.ID {
	return installation.ID{CompanyID: e.CompanyID, UserID: e.UserID}
}

// MaxClockSkew is how far in the future a change's timestamp may be, as seen by the receiver's
// clock, before ClampFuture moves it back: clocks differ by seconds, not minutes, and a
// timestamp far ahead would make every real later change of the entity look stale.
const MaxClockSkew = 5 * time.Minute

// ClampFuture sets a Timestamp more than MaxClockSkew after now to now, and reports whether it
// did. The worker orders the changes of an entity by Timestamp; a forged or broken timestamp in
// the future must not block the changes that follow.
func (e *Event) ClampFuture(now time.Time) bool {
	if e.Timestamp.After(now.Add(MaxClockSkew)) {
		e.Timestamp = now.UTC()
		return true
	}
	return false
}

// Key is the event's de-duplication key: one per installation and event identity.
func (e Event) Key() string {
	return "webhook#" + e.Installation().String() + "#" + e.ID
}

// EntityKey names the entity the event is about, per installation: the key under which the
// latest processed change is remembered, so an older change delivered late is skipped.
func (e Event) EntityKey() string {
	return "entity#" + e.Installation().String() + "#" + e.Entity + "#" + e.EntityID
}

// Parse reads a delivery body of either version. It never quotes the body in its errors.
func Parse(body []byte) (Event, error) {
	if len(body) > MaxBody {
		return Event{}, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(body), MaxBody)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return Event{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var meta map[string]json.RawMessage
	if err := json.Unmarshal(top["meta"], &meta); err != nil || meta == nil {
		return Event{}, fmt.Errorf("%w: meta is missing or not an object", ErrMalformed)
	}
	if _, v1 := meta["object"]; v1 || isV1(top) {
		return parseV1(top, meta)
	}
	return parseV2(top, meta)
}

func isV1(top map[string]json.RawMessage) bool {
	v := strings.TrimSpace(string(top["v"]))
	return v == "1" || v == `"1"`
}

func parseV2(top, meta map[string]json.RawMessage) (Event, error) {
	e := Event{Version: "2.0", Data: nullable(top["data"]), Previous: nullable(top["previous"])}
	var err error
	if v, ok := str(meta["version"]); ok && v != "" && !strings.HasPrefix(v, "2") {
		return Event{}, fmt.Errorf("%w: meta.version %q is not 2.x", ErrMalformed, clip(v))
	}
	if e.ID, err = need(meta, "id"); err != nil {
		return Event{}, err
	}
	if e.Action, err = need(meta, "action"); err != nil {
		return Event{}, err
	}
	switch e.Action {
	case ActionCreate, ActionChange, ActionDelete:
	default:
		return Event{}, fmt.Errorf("%w: meta.action %q is not create, change or delete", ErrMalformed, clip(e.Action))
	}
	if e.Entity, err = need(meta, "entity"); err != nil {
		return Event{}, err
	}
	if e.EntityID, err = entityID(meta, "entity_id"); err != nil {
		return Event{}, err
	}
	if err := ids(&e, meta); err != nil {
		return Event{}, err
	}
	if e.MergedToID, err = optionalEntityID(meta, "merged_to_id"); err != nil {
		return Event{}, err
	}
	if e.MergedFromID, err = optionalEntityID(meta, "merged_from_id"); err != nil {
		return Event{}, err
	}
	ts, err := need(meta, "timestamp")
	if err != nil {
		return Event{}, err
	}
	if e.Timestamp, err = parseTime(ts); err != nil {
		return Event{}, fmt.Errorf("%w: meta.timestamp: %v", ErrMalformed, err)
	}
	e.WebhookID, _ = str(meta["webhook_id"])
	e.CorrelationID, _ = str(meta["correlation_id"])
	if a, ok := str(meta["attempt"]); ok {
		e.Attempt, _ = strconv.Atoi(a)
	}
	return e, nil
}

// v1Actions maps v1 actions to v2's. A merge changes the surviving entity.
var v1Actions = map[string]string{"added": ActionCreate, "updated": ActionChange, "deleted": ActionDelete, "merged": ActionChange}

func parseV1(top, meta map[string]json.RawMessage) (Event, error) {
	e := Event{Version: "1.0", Data: nullable(top["current"]), Previous: nullable(top["previous"])}
	action, err := need(meta, "action")
	if err != nil {
		return Event{}, err
	}
	if e.Action = v1Actions[action]; e.Action == "" {
		return Event{}, fmt.Errorf("%w: meta.action %q is not a v1 action", ErrMalformed, clip(action))
	}
	if e.Entity, err = need(meta, "object"); err != nil {
		return Event{}, err
	}
	if e.EntityID, err = entityID(meta, "id"); err != nil {
		return Event{}, err
	}
	if err := ids(&e, meta); err != nil {
		return Event{}, err
	}
	micro, _ := str(meta["timestamp_micro"])
	secs, _ := str(meta["timestamp"])
	switch {
	case micro != "":
		n, err := strconv.ParseInt(micro, 10, 64)
		if err != nil || n <= 0 {
			return Event{}, fmt.Errorf("%w: meta.timestamp_micro is not a positive integer", ErrMalformed)
		}
		e.Timestamp = time.UnixMicro(n).UTC()
	case secs != "":
		if e.Timestamp, err = parseTime(secs); err != nil {
			return Event{}, fmt.Errorf("%w: meta.timestamp: %v", ErrMalformed, err)
		}
	default:
		return Event{}, fmt.Errorf("%w: meta.timestamp is required", ErrMalformed)
	}
	e.WebhookID, _ = str(meta["webhook_id"])
	if r, ok := str(top["retry"]); ok {
		n, _ := strconv.Atoi(r)
		e.Attempt = n + 1
	}
	// v1 has no event id: the change itself is the identity (retries repeat all of it).
	e.ID = "v1:" + e.Entity + ":" + e.EntityID + ":" + action + ":" + strconv.FormatInt(e.Timestamp.UnixMicro(), 10)
	return e, nil
}

// ids reads company_id (required), webhook_owner_id (the owner: UserID) and user_id (the
// actor), both optional: v1 names no owner, and a change made by Pipedrive itself may name no
// user. Present ids must be positive integers, as numbers or strings.
func ids(e *Event, meta map[string]json.RawMessage) error {
	var err error
	if e.CompanyID, err = installation.ParseNumber(meta["company_id"]); err != nil {
		return fmt.Errorf("%w: meta.company_id %v", ErrMalformed, err)
	}
	if e.UserID, err = optionalNumber(meta["webhook_owner_id"]); err != nil {
		return fmt.Errorf("%w: meta.webhook_owner_id %v", ErrMalformed, err)
	}
	if e.ActorUserID, err = optionalNumber(meta["user_id"]); err != nil {
		return fmt.Errorf("%w: meta.user_id %v", ErrMalformed, err)
	}
	return nil
}

// optionalNumber reads an id that may be absent or null (zero then).
func optionalNumber(raw json.RawMessage) (int64, error) {
	n, err := installation.ParseNumber(raw)
	if errors.Is(err, installation.ErrIDMissing) {
		return 0, nil
	}
	return n, err
}

// entityID reads a required entity id: a positive integer (as a number or digits) or a UUID
// (leads). Anything else is not an id Pipedrive sends and must not become a key.
func entityID(meta map[string]json.RawMessage, key string) (string, error) {
	s, err := need(meta, key)
	if err != nil {
		return "", err
	}
	if !ValidEntityID(s) {
		return "", fmt.Errorf("%w: meta.%s is neither a positive integer nor a UUID", ErrMalformed, key)
	}
	return s, nil
}

// optionalEntityID reads an entity id that may be absent, null or empty ("" then).
func optionalEntityID(meta map[string]json.RawMessage, key string) (string, error) {
	if s, ok := str(meta[key]); !ok || s == "" {
		if raw := bytes.TrimSpace(meta[key]); len(raw) > 0 && string(raw) != "null" && !ok {
			return "", fmt.Errorf("%w: meta.%s is not a string or a number", ErrMalformed, key)
		}
		return "", nil
	}
	return entityID(meta, key)
}

// ValidEntityID reports whether s is an entity id as Pipedrive sends one: a positive int64 in
// plain digits (no sign, no leading zero, so one entity has one key) or a UUID in its
// canonical 8-4-4-4-12 hexadecimal form (leads).
func ValidEntityID(s string) bool {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n > 0 && strconv.FormatInt(n, 10) == s
	}
	return isUUID(s)
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
				return false
			}
		}
	}
	return true
}

// maxField bounds an identifying meta field: ids and names are short; a longer one is garbage
// that must not become a DynamoDB key or a log line.
const maxField = 200

// need reads a required scalar meta field as text.
func need(meta map[string]json.RawMessage, key string) (string, error) {
	s, ok := str(meta[key])
	switch {
	case !ok || strings.TrimSpace(s) == "":
		return "", fmt.Errorf("%w: meta.%s is required (a string or a number)", ErrMalformed, key)
	case len(s) > maxField || !utf8.ValidString(s) || strings.ContainsAny(s, "#\x00\n\r"):
		return "", fmt.Errorf("%w: meta.%s is not a plain identifier", ErrMalformed, key)
	}
	return s, nil
}

// str reads a JSON string or number as text; false for anything else (absent, null, object).
func str(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return "", false
		}
		return n.String(), true
	}
	return "", false
}

// Epochs at or above these are read in a finer unit: 1e11 seconds is the year 5138 and 1e14
// milliseconds the year 5138 again, so no real time in seconds (or milliseconds) reaches them,
// and a millisecond or microsecond epoch is never read as seconds thousands of years ahead.
const (
	epochMillisFrom = 100_000_000_000
	epochMicrosFrom = 100_000_000_000_000
)

// parseTime reads RFC 3339 (with or without fractions) or an epoch in seconds, milliseconds or
// microseconds (told apart by magnitude).
func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch {
		case n <= 0:
			return time.Time{}, errors.New("not a positive epoch")
		case n >= epochMicrosFrom:
			return time.UnixMicro(n).UTC(), nil
		case n >= epochMillisFrom:
			return time.UnixMilli(n).UTC(), nil
		}
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		// Pipedrive's v1 objects use "2006-01-02 15:04:05" (UTC); accept it in meta too.
		if t2, err2 := time.Parse(time.DateTime, s); err2 == nil {
			return t2.UTC(), nil
		}
		return time.Time{}, errors.New("not RFC 3339 or epoch seconds")
	}
	return t.UTC(), nil
}

// nullable keeps a JSON value, dropping an absent one (null stays null).
func nullable(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	return raw
}

// clip cuts a value quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return strings.ToValidUTF8(s[:40], "") + "…"
	}
	return s
}
