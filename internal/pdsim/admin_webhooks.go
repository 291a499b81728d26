package pdsim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// webhookAdminRoutes registers the admin endpoints for events and webhook deliveries.
func (s *Server) webhookAdminRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /_sim/user-actions", s.adminUserAction)
	m.HandleFunc("GET /_sim/events", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Events()) })
	m.HandleFunc("POST /_sim/events/{id}/redeliver", s.adminRedeliver)
	m.HandleFunc("GET /_sim/deliveries", s.adminDeliveries)
	m.HandleFunc("DELETE /_sim/deliveries", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearDeliveries()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/deliveries/run-due", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": nonNilSlice(s.DeliverDue(r.Context()))})
	})
	m.HandleFunc("POST /_sim/deliveries/wait", s.adminWaitDeliveries)
}

// adminUserAction serves POST /_sim/user-actions with a UserAction body: 201
// {"event": Event, "data": the entity}; 404 for an unknown user or entity, 400 otherwise.
func (s *Server) adminUserAction(w http.ResponseWriter, r *http.Request) {
	var a UserAction
	if !decodeAdmin(w, r, &a) {
		return
	}
	ev, data, err := s.ActAsUser(a)
	var nf notFoundError
	switch {
	case errors.Is(err, ErrUnknownUser) || errors.As(err, &nf):
		adminError(w, http.StatusNotFound, err)
	case err != nil:
		adminError(w, http.StatusBadRequest, err)
	default:
		writeJSON(w, http.StatusCreated, map[string]any{"event": ev, "data": data})
	}
}

// adminRedeliver serves POST /_sim/events/{id}/redeliver with a RedeliverOptions body:
// {"deliveries": […]} once every copy is answered; 404 for an unknown event or webhook.
func (s *Server) adminRedeliver(w http.ResponseWriter, r *http.Request) {
	var o RedeliverOptions
	if !decodeAdmin(w, r, &o) {
		return
	}
	ds, err := s.Redeliver(r.Context(), r.PathValue("id"), o)
	if err != nil {
		adminError(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": nonNilSlice(ds)})
}

// adminDeliveries serves GET /_sim/deliveries[?webhook_id=…][&event_id=…].
func (s *Server) adminDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var hookID int64
	if v := q.Get("webhook_id"); v != "" {
		var err error
		if hookID, err = strconv.ParseInt(v, 10, 64); err != nil {
			adminError(w, http.StatusBadRequest, errors.New("webhook_id must be an integer"))
			return
		}
	}
	eventID := q.Get("event_id")
	out := []Delivery{}
	for _, d := range s.Deliveries() {
		if (hookID == 0 || d.WebhookID == hookID) && (eventID == "" || d.EventID == eventID) {
			out = append(out, d)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// adminWaitDeliveries serves POST /_sim/deliveries/wait {"timeout":"5s"} (default 10 s):
// 204 once nothing is in flight, 504 if the timeout passes first.
func (s *Server) adminWaitDeliveries(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Timeout string `json:"timeout"`
	}
	if !decodeAdmin(w, r, &req) {
		return
	}
	timeout := 10 * time.Second
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			adminError(w, http.StatusBadRequest, fmt.Errorf("timeout must be a positive Go duration"))
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if err := s.WaitDeliveries(ctx); err != nil {
		adminError(w, http.StatusGatewayTimeout, fmt.Errorf("deliveries still in flight: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// nonNilSlice turns nil into an empty slice so it renders as [].
func nonNilSlice[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
