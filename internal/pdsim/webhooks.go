package pdsim

import (
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Webhook is a webhook an app created through /api/v1/webhooks.
type Webhook struct {
	ID               int64
	CompanyID        int64
	OwnerID          int64 // the user whose token created it
	UserID           int64 // the user the webhook is authorized with (user_id, default owner)
	Name             string
	EventAction      string
	EventObject      string
	SubscriptionURL  string
	Version          string
	HTTPAuthUser     string
	HTTPAuthPassword string
	AddTime          time.Time
	// ConsecutiveFailures counts failed first attempts; only the end of a ban resets it (a
	// success does not).
	ConsecutiveFailures int
	// FailingSince is the start of the first failed attempt after the last successful
	// delivery (zero while the last attempt succeeded or none failed); WebhookDeleteAfter
	// later the webhook is deleted.
	FailingSince time.Time
	// BannedUntil is the end of the current ban (zero when not banned); deliveries before it
	// are dropped.
	BannedUntil time.Time

	lastDelivery time.Time // when the last attempt started
	lastStatus   int       // its status (0: none)
}

// The accepted values of event_action and event_object: the v2 actions (create, change,
// delete) and v2's newer objects (lead, deal_product, deal_installment, project, task, board,
// phase), plus the v1-era actions (added, updated, deleted, merged) and activityType that
// version 1.0 webhooks use. Only deal, person, organization, activity and note change in
// the simulator; webhooks on the other objects are accepted and never notified.
var (
	eventActions = []string{"create", "change", "delete", "*", "added", "updated", "deleted", "merged"}
	eventObjects = []string{
		"activity", "activityType", "deal", "lead", "note", "organization", "person", "pipeline", "product",
		"stage", "user", "deal_product", "deal_installment", "project", "task", "board", "phase", "*",
	}
)

// render is the webhook as the API answers it at time now.
func (h *Webhook) render(now time.Time) map[string]any {
	var lastTime, lastStatus any
	if !h.lastDelivery.IsZero() {
		lastTime = h.lastDelivery.UTC().Format(time.RFC3339)
		lastStatus = h.lastStatus
	}
	return map[string]any{
		"id":                  h.ID,
		"company_id":          h.CompanyID,
		"owner_id":            h.OwnerID,
		"user_id":             h.UserID,
		"admin_id":            h.OwnerID,
		"name":                h.Name,
		"event_action":        h.EventAction,
		"event_object":        h.EventObject,
		"subscription_url":    h.SubscriptionURL,
		"version":             h.Version,
		"is_active":           1,
		"type":                "application",
		"add_time":            h.AddTime.UTC().Format(time.RFC3339),
		"remove_time":         nil,
		"remove_reason":       nil,
		"last_delivery_time":  lastTime,
		"last_http_status":    lastStatus,
		"http_auth_user":      nullable(h.HTTPAuthUser),
		"http_auth_password":  nullable(h.HTTPAuthPassword),
		"additional_data":     map[string]any{},
		"is_subscription_ban": now.Before(h.BannedUntil),
	}
}

// nullable renders "" as null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Webhooks returns the webhooks owned by userID, ordered by id.
func (s *Server) Webhooks(userID int64) []Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Webhook
	for _, h := range sortedByID(s.webhooks, func(h *Webhook) int64 { return h.ID }) {
		if h.OwnerID == userID {
			out = append(out, *h)
		}
	}
	return out
}

// listWebhooks serves GET /api/v1/webhooks: the caller's webhooks.
func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	g := principal(r)
	s.mu.Lock()
	now := s.nowLocked()
	data := []map[string]any{}
	for _, h := range sortedByID(s.webhooks, func(h *Webhook) int64 { return h.ID }) {
		if h.OwnerID == g.userID && h.CompanyID == g.companyID {
			data = append(data, h.render(now))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "success": true, "data": data})
}

// createWebhook serves POST /api/v1/webhooks: validation (400), the per-user limit (422),
// then 201.
func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(w, r)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, err.Error())
		return
	}
	g := principal(r)
	h := &Webhook{CompanyID: g.companyID, OwnerID: g.userID, UserID: g.userID, Version: "2.0"}
	errs := map[string][]string{}
	str := func(key string) string {
		v, _, err := in.str(key)
		if err != nil {
			errs[key] = []string{"must be a string"}
		}
		return v
	}
	h.SubscriptionURL = str("subscription_url")
	if u, err := url.Parse(h.SubscriptionURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs["subscription_url"] = []string{"invalid or non-reachable URL"}
	}
	if h.EventAction = str("event_action"); !slices.Contains(eventActions, h.EventAction) {
		errs["event_action"] = []string{"invalid value"}
	}
	if h.EventObject = str("event_object"); !slices.Contains(eventObjects, h.EventObject) {
		errs["event_object"] = []string{"invalid value"}
	}
	if h.Name = str("name"); h.Name == "" {
		errs["name"] = []string{"is required"}
	}
	if v := str("version"); v != "" {
		if v != "1.0" && v != "2.0" {
			errs["version"] = []string{"invalid value"}
		}
		h.Version = v
	}
	h.HTTPAuthUser = str("http_auth_user")
	h.HTTPAuthPassword = str("http_auth_password")
	if uid, has, err := in.id("user_id"); err != nil {
		errs["user_id"] = []string{"must be an integer"}
	} else if has && uid != 0 {
		h.UserID = uid
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "success": false, "errors": errs})
		return
	}

	s.mu.Lock()
	n := 0
	for _, other := range s.webhooks {
		if other.OwnerID == g.userID && other.CompanyID == g.companyID {
			n++
		}
	}
	if n >= s.cfg.WebhookLimit {
		s.mu.Unlock()
		s.log.Info("api rejected", "action", "webhook_create", "company_id", g.companyID, "user_id", g.userID, "reason", "webhooks_limit", "status", http.StatusUnprocessableEntity)
		writeAPIError(w, http.StatusUnprocessableEntity, MsgWebhooksLimit)
		return
	}
	s.nextID++
	h.ID = s.nextID
	h.AddTime = s.nowLocked()
	s.webhooks[h.ID] = h
	body := h.render(h.AddTime)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"status": "ok", "success": true, "data": body})
}

// deleteWebhook serves DELETE /api/v1/webhooks/{id}.
func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, v1)
	if !ok {
		return
	}
	g := principal(r)
	s.mu.Lock()
	h, found := s.webhooks[id]
	found = found && h.CompanyID == g.companyID && h.OwnerID == g.userID
	if found {
		delete(s.webhooks, id)
	}
	s.mu.Unlock()
	if !found {
		writeAPIError(w, http.StatusNotFound, MsgWebhookNotFound)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "success": true})
}
