package pdsim

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// The v2 event actions, and where a change came from (meta.change_source).
const (
	actionCreate = "create"
	actionChange = "change"
	actionDelete = "delete"
	sourceAPI    = "api"
	sourceApp    = "app"
)

// v1Actions maps a v2 action to the v1 word (meta.action, event "added.deal").
var v1Actions = map[string]string{actionCreate: "added", actionChange: "updated", actionDelete: "deleted"}

// canonicalAction maps a webhook's event_action to the v2 word, so v1-era webhooks
// (added/updated/deleted) match the same events; "merged" matches nothing (no merges here).
func canonicalAction(a string) string {
	for v2a, v1a := range v1Actions {
		if a == v1a {
			return v2a
		}
	}
	return a
}

// renderings is an entity rendered for both webhook versions; zero means "no entity".
type renderings struct{ v1, v2 map[string]any }

// Event is one change of an entity that the company's webhooks are notified of. Every
// create, change and delete through the API or ActAsUser is one Event, delivered once to
// each matching webhook (plus retries, which carry the same ID).
type Event struct {
	// ID is meta.id of v2 payloads: the same on every attempt and every webhook.
	ID string `json:"id"`
	// CorrelationID is meta.correlation_id (one per user action).
	CorrelationID string `json:"correlation_id"`
	// Action is "create", "change" or "delete"; Object is the entity type ("deal").
	Action string `json:"action"`
	Object string `json:"object"`
	// EntityID is the entity's id; CompanyID and UserID who made the change.
	EntityID  int64 `json:"entity_id"`
	CompanyID int64 `json:"company_id"`
	UserID    int64 `json:"user_id"`
	// Source is meta.change_source: "api" for API calls, "app" for ActAsUser.
	Source string `json:"change_source"`
	// Time is when the change happened on the simulated clock (meta.timestamp).
	Time time.Time `json:"time"`
	// WebhookIDs are the webhooks the event matched when it happened.
	WebhookIDs []int64 `json:"webhook_ids"`

	host              string
	current, previous renderings
}

// emitLocked records an event of g's user on object entityID and starts its first delivery
// to every matching webhook of g's company. cur is the entity after the change (zero for a
// delete), prev before it (zero for a create). Callers hold s.mu.
func (s *Server) emitLocked(g grant, object, action string, entityID int64, source string, cur, prev renderings) *Event {
	ev := &Event{
		ID: newUUID(), CorrelationID: newUUID(), Action: action, Object: object, EntityID: entityID,
		CompanyID: g.companyID, UserID: g.userID, Source: source, Time: s.nowLocked(),
		host: s.users[g.userID].CompanyDomain + ".pipedrive.com", current: cur, previous: prev,
	}
	for _, h := range sortedByID(s.webhooks, func(h *Webhook) int64 { return h.ID }) {
		if h.matches(ev) {
			ev.WebhookIDs = append(ev.WebhookIDs, h.ID)
			s.startLocked(job{ev: ev, hookID: h.ID, attempt: 1})
		}
	}
	s.dl.events = append(s.dl.events, ev)
	s.log.Info("entity event", "action", "webhook_event", "company_id", g.companyID, "user_id", g.userID,
		"object", object, "event_action", action, "entity_id", entityID, "event_id", ev.ID, "webhooks", len(ev.WebhookIDs))
	return ev
}

// matches reports whether h is notified of ev: same company, object equal or "*", action
// equal (v1 words mapped to v2) or "*".
func (h *Webhook) matches(ev *Event) bool {
	if h.CompanyID != ev.CompanyID {
		return false
	}
	if h.EventObject != "*" && h.EventObject != ev.Object {
		return false
	}
	a := canonicalAction(h.EventAction)
	return a == "*" || a == ev.Action
}

// webhookType is meta.type of every delivery: the simulator's webhooks are all created by an
// app through the API, and Pipedrive calls those app-specific webhooks "application" (the
// web app's own are "general").
const webhookType = "application"

// payload is the JSON body of attempt of ev to h, in h's version. meta.user_id is who made the
// change (ev.UserID: the installing user, a colleague, another integration) and
// meta.webhook_owner_id the user whose webhook it is (h.OwnerID): in a team they differ for
// most deliveries (v2 guide; changelog "Bug fixes in webhooks v2 payload", 2023-09-05).
func (s *Server) payload(ev *Event, h Webhook, attempt int) map[string]any {
	if h.Version == "1.0" {
		return s.payloadV1(ev, h, attempt)
	}
	id := func(n int64) any {
		if s.cfg.WebhookIDsAsNumbers {
			return n
		}
		return strconv.FormatInt(n, 10)
	}
	meta := map[string]any{
		"action":             ev.Action,
		"entity":             ev.Object,
		"entity_id":          id(ev.EntityID),
		"company_id":         id(ev.CompanyID),
		"user_id":            id(ev.UserID),
		"id":                 ev.ID,
		"correlation_id":     ev.CorrelationID,
		"timestamp":          ev.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
		"version":            "2.0",
		"webhook_id":         id(h.ID),
		"webhook_owner_id":   id(h.OwnerID),
		"attempt":            attempt,
		"host":               ev.host,
		"type":               webhookType,
		"is_bulk_edit":       false,
		"change_source":      ev.Source,
		"permitted_user_ids": []any{id(h.UserID)},
	}
	var data, previous any
	switch ev.Action {
	case actionCreate:
		data = ev.current.v2
	case actionChange:
		data = ev.current.v2
		if diff := changedFields(ev.previous.v2, ev.current.v2); len(diff) > 0 {
			previous = diff
		}
	case actionDelete:
		// UNCONFIRMED: the deleted entity's last state is in previous and data is null.
		previous = ev.previous.v2
	}
	return map[string]any{"meta": meta, "data": data, "previous": previous}
}

// payloadV1 is the v1 body: {"v":1,"event":"added.deal","current","previous","meta",…}. Its
// meta has no webhook_owner_id (v1's documented fields and captured payloads name none): a
// receiver knows the owner only from the webhook_id.
func (s *Server) payloadV1(ev *Event, h Webhook, attempt int) map[string]any {
	action := v1Actions[ev.Action]
	matches := map[string]any{"current": []any{}, "previous": []any{}}
	meta := map[string]any{
		"v":                      1,
		"action":                 action,
		"object":                 ev.Object,
		"id":                     ev.EntityID,
		"company_id":             ev.CompanyID,
		"user_id":                ev.UserID,
		"host":                   ev.host,
		"timestamp":              ev.Time.Unix(),
		"timestamp_micro":        ev.Time.UnixMicro(),
		"permitted_user_ids":     []int64{h.UserID},
		"trans_pending":          false,
		"is_bulk_update":         false,
		"pipedrive_service_name": false,
		"change_source":          ev.Source,
		"matches_filters":        matches,
		"webhook_id":             strconv.FormatInt(h.ID, 10),
		"type":                   webhookType,
	}
	var current, previous any
	if ev.current.v1 != nil {
		current = ev.current.v1
	}
	if ev.previous.v1 != nil {
		previous = ev.previous.v1
	}
	return map[string]any{
		"v": 1, "matches_filters": matches, "meta": meta, "retry": attempt - 1,
		"current": current, "previous": previous, "event": action + "." + ev.Object,
	}
}

// changedFields returns the old values of the fields that differ between before and after,
// leaving out update_time, which every change moves.
func changedFields(before, after map[string]any) map[string]any {
	out := map[string]any{}
	for k, old := range before {
		if k == "update_time" {
			continue
		}
		if !reflect.DeepEqual(old, after[k]) {
			out[k] = old
		}
	}
	return out
}

// clone returns a copy of ev safe to hand out (payload maps are not copied: they are never
// modified after the event is made).
func (ev *Event) clone() Event {
	c := *ev
	c.WebhookIDs = append([]int64(nil), ev.WebhookIDs...)
	return c
}

// Events returns every event so far, oldest first.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Event, 0, len(s.dl.events))
	for _, ev := range s.dl.events {
		out = append(out, ev.clone())
	}
	return out
}

// eventLocked finds an event by id; callers hold s.mu.
func (s *Server) eventLocked(id string) *Event {
	for _, ev := range s.dl.events {
		if ev.ID == id {
			return ev
		}
	}
	return nil
}

// newUUID returns a random (version 4) UUID string.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// kind is an entity type without its Go type: what ActAsUser needs.
type kind interface {
	objectName() string
	createAs(s *Server, g grant, v apiVersion, in input, source string) (map[string]any, *Event, error)
	updateAs(s *Server, g grant, v apiVersion, id int64, in input, source string) (map[string]any, *Event, error)
	deleteAs(s *Server, g grant, id int64, source string) (*Event, error)
}

// kinds returns the entity types ActAsUser can act on, by event_object.
func kinds() map[string]kind {
	out := map[string]kind{}
	for _, k := range []kind{dealResource, personResource, organizationResource, activityResource, noteResource} {
		out[k.objectName()] = k
	}
	return out
}

// UserAction is a change a Pipedrive user makes in the web app: it changes the data as the
// API would and notifies webhooks with change_source "app".
type UserAction struct {
	// UserID is who acts (0: the acting user); the change happens in their company.
	UserID int64 `json:"user_id"`
	// Object is "deal", "person", "organization", "activity" or "note".
	Object string `json:"object"`
	// Action is "create", "change" or "delete".
	Action string `json:"action"`
	// ID is the entity to change or delete (ignored for create).
	ID int64 `json:"id"`
	// Fields are the entity's fields as API v2 names them (v1 for notes), e.g.
	// {"title":"Big deal","value":100}.
	Fields map[string]any `json:"fields"`
}

// ActAsUser applies a as a Pipedrive user would and returns the event it caused (whose first
// deliveries are under way: see WaitDeliveries) and the entity as v2 renders it (nil for a
// delete). Invalid fields, an unknown object or action, and a missing entity are errors.
func (s *Server) ActAsUser(a UserAction) (Event, map[string]any, error) {
	k, ok := kinds()[a.Object]
	if !ok {
		return Event{}, nil, fmt.Errorf("pdsim: act as user: unknown object %q", a.Object)
	}
	s.mu.Lock()
	uid := a.UserID
	if uid == 0 {
		uid = s.acting
	}
	u, known := s.users[uid]
	var g grant
	if known {
		g = s.grantForLocked(u)
	}
	s.mu.Unlock()
	if !known {
		return Event{}, nil, fmt.Errorf("act as user %d: %w", uid, ErrUnknownUser)
	}
	in, err := inputOf(a.Fields)
	if err != nil {
		return Event{}, nil, fmt.Errorf("pdsim: act as user: fields: %w", err)
	}
	v := v2
	if a.Object == "note" {
		v = v1
	}
	var (
		data map[string]any
		ev   *Event
	)
	switch a.Action {
	case actionCreate:
		data, ev, err = k.createAs(s, g, v, in, sourceApp)
	case actionChange:
		data, ev, err = k.updateAs(s, g, v, a.ID, in, sourceApp)
	case actionDelete:
		ev, err = k.deleteAs(s, g, a.ID, sourceApp)
	default:
		err = fmt.Errorf("unknown action %q (want create, change or delete)", a.Action)
	}
	if err != nil {
		return Event{}, nil, fmt.Errorf("pdsim: act as user: %s %s: %w", a.Action, a.Object, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return ev.clone(), data, nil
}

// inputOf turns Go values into API input, as if they had arrived as a JSON body.
func inputOf(fields map[string]any) (input, error) {
	b, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	in := input{}
	if err := dec.Decode(&in); err != nil {
		return nil, err
	}
	if in == nil {
		in = input{}
	}
	return in, nil
}
