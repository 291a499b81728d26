package pdsim

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
)

// apiVersion is "v1" or "v2"; they differ in update method, field names and time format.
type apiVersion string

// The API versions.
const (
	v1 apiVersion = "v1"
	v2 apiVersion = "v2"
)

// v1Time is the v1 timestamp layout ("2024-01-02 15:04:05", UTC).
const v1Time = time.DateTime

// formatTime renders t for version v.
func formatTime(v apiVersion, t time.Time) string {
	if v == v1 {
		return t.UTC().Format(v1Time)
	}
	return t.UTC().Format(time.RFC3339)
}

// deal is a stored deal.
type deal struct {
	id, companyID, ownerID, personID int64
	title, currency, status          string
	value                            float64
	addTime, updateTime              time.Time
}

// person is a stored person.
type person struct {
	id, companyID, ownerID int64
	name                   string
	emails, phones         []contact
	addTime, updateTime    time.Time
}

// contact is one email address or phone number of a person.
type contact struct {
	Value   string `json:"value"`
	Primary bool   `json:"primary"`
	Label   string `json:"label"`
}

// dealStatuses are the statuses a deal may be set to.
var dealStatuses = []string{"open", "won", "lost"}

// userRefLocked renders a v1 user reference object ({id, name, email, value}).
func (s *Server) userRefLocked(id int64) map[string]any {
	u := s.users[id]
	return map[string]any{"id": id, "name": u.Name, "email": u.Email, "has_pic": 0, "pic_hash": nil, "active_flag": true, "value": id}
}

// renderDealLocked renders d for version v. v1 nests user and person as objects; v2 uses ids.
func (s *Server) renderDealLocked(v apiVersion, d *deal) map[string]any {
	out := map[string]any{
		"id":          d.id,
		"title":       d.title,
		"value":       d.value,
		"currency":    d.currency,
		"status":      d.status,
		"stage_id":    1,
		"pipeline_id": 1,
		"org_id":      nil,
		"add_time":    formatTime(v, d.addTime),
		"update_time": formatTime(v, d.updateTime),
	}
	var personRef any
	if v == v1 {
		out["user_id"] = s.userRefLocked(d.ownerID)
		out["active"] = d.status == "open"
		out["deleted"] = false
		if p, ok := s.persons[d.personID]; ok && p.companyID == d.companyID {
			personRef = map[string]any{"active_flag": true, "name": p.name, "email": v1Contacts(p.emails), "phone": v1Contacts(p.phones), "owner_id": p.ownerID, "value": p.id}
		}
	} else {
		out["owner_id"] = d.ownerID
		out["is_deleted"] = false
		if d.personID != 0 {
			personRef = d.personID
		}
	}
	out["person_id"] = personRef
	return out
}

// v1Contacts renders a v1 email/phone list: never empty, as Pipedrive answers
// [{"value":"","primary":true}] for a person without one.
func v1Contacts(cs []contact) []contact {
	if len(cs) == 0 {
		return []contact{{Value: "", Primary: true}}
	}
	return cs
}

// renderPersonLocked renders p for version v.
func (s *Server) renderPersonLocked(v apiVersion, p *person) map[string]any {
	first, last, _ := strings.Cut(p.name, " ")
	out := map[string]any{
		"id":          p.id,
		"name":        p.name,
		"first_name":  first,
		"last_name":   last,
		"org_id":      nil,
		"add_time":    formatTime(v, p.addTime),
		"update_time": formatTime(v, p.updateTime),
	}
	if v == v1 {
		out["email"] = v1Contacts(p.emails)
		out["phone"] = v1Contacts(p.phones)
		out["owner_id"] = s.userRefLocked(p.ownerID)
		out["active_flag"] = true
	} else {
		out["emails"] = nonNil(p.emails)
		out["phones"] = nonNil(p.phones)
		out["owner_id"] = p.ownerID
		out["is_deleted"] = false
	}
	return out
}

// nonNil turns a nil list into an empty one so it renders as [].
func nonNil(cs []contact) []contact {
	if cs == nil {
		return []contact{}
	}
	return cs
}

// applyDeal applies input fields to d. An error is the 400 message.
func applyDeal(v apiVersion, d *deal, in input, creating bool) error {
	title, has, err := in.str("title")
	if err != nil {
		return err
	}
	if has || creating {
		if strings.TrimSpace(title) == "" {
			return inputError("Deal title must be given.")
		}
		d.title = title
	}
	if val, has, err := in.num("value"); err != nil {
		return err
	} else if has {
		d.value = val
	}
	if cur, has, err := in.str("currency"); err != nil {
		return err
	} else if has && cur != "" {
		d.currency = strings.ToUpper(cur)
	}
	if st, has, err := in.str("status"); err != nil {
		return err
	} else if has {
		if !slices.Contains(dealStatuses, st) {
			return errors.New("status must be one of open, won, lost")
		}
		d.status = st
	}
	if pid, has, err := in.id("person_id"); err != nil {
		return err
	} else if has {
		d.personID = pid
	}
	ownerKey := "user_id"
	if v == v2 {
		ownerKey = "owner_id"
	}
	if oid, has, err := in.id(ownerKey); err != nil {
		return err
	} else if has && oid != 0 {
		d.ownerID = oid
	}
	return nil
}

// applyPerson applies input fields to p. An error is the 400 message.
func applyPerson(v apiVersion, p *person, in input, creating bool) error {
	name, has, err := in.str("name")
	if err != nil {
		return err
	}
	if has || creating {
		if strings.TrimSpace(name) == "" {
			return inputError("Name must be given.")
		}
		p.name = name
	}
	emailKey, phoneKey := "email", "phone"
	if v == v2 {
		emailKey, phoneKey = "emails", "phones"
	}
	if cs, has, err := in.contacts(emailKey); err != nil {
		return err
	} else if has {
		p.emails = cs
	}
	if cs, has, err := in.contacts(phoneKey); err != nil {
		return err
	} else if has {
		p.phones = cs
	}
	if oid, has, err := in.id("owner_id"); err != nil {
		return err
	} else if has && oid != 0 {
		p.ownerID = oid
	}
	return nil
}

// createStatus is the status of a successful create: 201 in v1, 200 in v2.
func createStatus(v apiVersion) int {
	if v == v1 {
		return http.StatusCreated
	}
	return http.StatusOK
}

// listDeals serves GET /api/{v}/deals.
func (s *Server) listDeals(v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start, limit, err := parsePage(r, v)
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		g := principal(r)
		s.mu.Lock()
		var items []map[string]any
		for _, d := range sortedByID(s.deals, func(d *deal) int64 { return d.id }) {
			if d.companyID == g.companyID {
				items = append(items, s.renderDealLocked(v, d))
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, listBody(v, items, start, limit))
	}
}

// getDeal serves GET /api/{v}/deals/{id}.
func (s *Server) getDeal(v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r)
		if !ok {
			writeAPIError(w, http.StatusBadRequest, "id must be a positive integer")
			return
		}
		g := principal(r)
		s.mu.Lock()
		d, found := s.deals[id]
		if !found || d.companyID != g.companyID {
			s.mu.Unlock()
			writeAPIError(w, http.StatusNotFound, MsgDealNotFound)
			return
		}
		body := s.renderDealLocked(v, d)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": body})
	}
}

// createDeal serves POST /api/{v}/deals.
func (s *Server) createDeal(v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, err := readInput(w, r)
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		g := principal(r)
		d := &deal{companyID: g.companyID, ownerID: g.userID, currency: "EUR", status: "open"}
		if err := applyDeal(v, d, in, true); err != nil {
			writeAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.mu.Lock()
		s.nextID++
		d.id = s.nextID
		d.addTime = s.nowLocked()
		d.updateTime = d.addTime
		s.deals[d.id] = d
		body := s.renderDealLocked(v, d)
		s.mu.Unlock()
		writeJSON(w, createStatus(v), map[string]any{"success": true, "data": body})
	}
}

// updateDeal serves PUT /api/v1/deals/{id} and PATCH /api/v2/deals/{id}.
func (s *Server) updateDeal(v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r)
		if !ok {
			writeAPIError(w, http.StatusBadRequest, "id must be a positive integer")
			return
		}
		in, err := readInput(w, r)
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		g := principal(r)
		s.mu.Lock()
		defer s.mu.Unlock()
		d, found := s.deals[id]
		if !found || d.companyID != g.companyID {
			writeAPIError(w, http.StatusNotFound, MsgDealNotFound)
			return
		}
		updated := *d
		if err := applyDeal(v, &updated, in, false); err != nil {
			writeAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		updated.updateTime = s.nowLocked()
		*d = updated
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": s.renderDealLocked(v, d)})
	}
}

// deleteDeal serves DELETE /api/{v}/deals/{id}.
func (s *Server) deleteDeal(v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r)
		if !ok {
			writeAPIError(w, http.StatusBadRequest, "id must be a positive integer")
			return
		}
		g := principal(r)
		s.mu.Lock()
		d, found := s.deals[id]
		if found && d.companyID == g.companyID {
			delete(s.deals, id)
		}
		s.mu.Unlock()
		if !found || d.companyID != g.companyID {
			writeAPIError(w, http.StatusNotFound, MsgDealNotFound)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": map[string]any{"id": id}})
	}
}

// listPersons serves GET /api/{v}/persons.
func (s *Server) listPersons(v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start, limit, err := parsePage(r, v)
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		g := principal(r)
		s.mu.Lock()
		var items []map[string]any
		for _, p := range sortedByID(s.persons, func(p *person) int64 { return p.id }) {
			if p.companyID == g.companyID {
				items = append(items, s.renderPersonLocked(v, p))
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, listBody(v, items, start, limit))
	}
}

// getPerson serves GET /api/{v}/persons/{id}.
func (s *Server) getPerson(v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r)
		if !ok {
			writeAPIError(w, http.StatusBadRequest, "id must be a positive integer")
			return
		}
		g := principal(r)
		s.mu.Lock()
		p, found := s.persons[id]
		if !found || p.companyID != g.companyID {
			s.mu.Unlock()
			writeAPIError(w, http.StatusNotFound, MsgPersonNotFound)
			return
		}
		body := s.renderPersonLocked(v, p)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": body})
	}
}

// createPerson serves POST /api/{v}/persons.
func (s *Server) createPerson(v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, err := readInput(w, r)
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		g := principal(r)
		p := &person{companyID: g.companyID, ownerID: g.userID}
		if err := applyPerson(v, p, in, true); err != nil {
			writeAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.mu.Lock()
		s.nextID++
		p.id = s.nextID
		p.addTime = s.nowLocked()
		p.updateTime = p.addTime
		s.persons[p.id] = p
		body := s.renderPersonLocked(v, p)
		s.mu.Unlock()
		writeJSON(w, createStatus(v), map[string]any{"success": true, "data": body})
	}
}

// updatePerson serves PUT /api/v1/persons/{id} and PATCH /api/v2/persons/{id}.
func (s *Server) updatePerson(v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r)
		if !ok {
			writeAPIError(w, http.StatusBadRequest, "id must be a positive integer")
			return
		}
		in, err := readInput(w, r)
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		g := principal(r)
		s.mu.Lock()
		defer s.mu.Unlock()
		p, found := s.persons[id]
		if !found || p.companyID != g.companyID {
			writeAPIError(w, http.StatusNotFound, MsgPersonNotFound)
			return
		}
		updated := *p
		if err := applyPerson(v, &updated, in, false); err != nil {
			writeAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		updated.updateTime = s.nowLocked()
		*p = updated
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": s.renderPersonLocked(v, p)})
	}
}

// deletePerson serves DELETE /api/{v}/persons/{id}.
func (s *Server) deletePerson(v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r)
		if !ok {
			writeAPIError(w, http.StatusBadRequest, "id must be a positive integer")
			return
		}
		g := principal(r)
		s.mu.Lock()
		p, found := s.persons[id]
		if found && p.companyID == g.companyID {
			delete(s.persons, id)
		}
		s.mu.Unlock()
		if !found || p.companyID != g.companyID {
			writeAPIError(w, http.StatusNotFound, MsgPersonNotFound)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": map[string]any{"id": id}})
	}
}

// sortedByID returns the map's values ordered by id.
func sortedByID[T any](m map[int64]T, id func(T) int64) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b T) int { return cmpInt64(id(a), id(b)) })
	return out
}
