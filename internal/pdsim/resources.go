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

// record holds the fields every stored entity has.
type record struct {
	id, companyID, ownerID int64
	addTime, updateTime    time.Time
}

// base returns r itself, so resource can reach the common fields of any entity embedding it.
func (r *record) base() *record { return r }

// deal is a stored deal.
type deal struct {
	record
	personID                int64
	title, currency, status string
	value                   float64
}

// person is a stored person.
type person struct {
	record
	name           string
	emails, phones []contact
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
	if err := applyRequired(in, "title", "Deal title must be given.", creating, &d.title); err != nil {
		return err
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
	return applyOwner(in, ownerKey, &d.record)
}

// applyPerson applies input fields to p. An error is the 400 message.
func applyPerson(v apiVersion, p *person, in input, creating bool) error {
	if err := applyRequired(in, "name", "Name must be given.", creating, &p.name); err != nil {
		return err
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
	return applyOwner(in, "owner_id", &p.record)
}

// applyRequired sets *dst from the string field key, which a create must give and an update
// may leave out; blank is the 400 message msg.
func applyRequired(in input, key, msg string, creating bool, dst *string) error {
	v, has, err := in.str(key)
	if err != nil {
		return err
	}
	if has || creating {
		if strings.TrimSpace(v) == "" {
			return inputError(msg)
		}
		*dst = v
	}
	return nil
}

// applyOwner sets r's owner from the id field key; 0 or null keeps the owner.
func applyOwner(in input, key string, r *record) error {
	oid, has, err := in.id(key)
	if err != nil {
		return err
	}
	if has && oid != 0 {
		r.ownerID = oid
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

// entity is a pointer to a stored entity type (*deal, *person, …) that embeds record.
type entity[T any] interface {
	*T
	base() *record
}

// resource describes one entity type to the CRUD handlers, which are the same for all of
// them: company-scoped, ids from Server.nextID, times from the server's clock, v1 and v2
// served by the same code with version-specific input and rendering. Every create, change
// and delete, through the API or ActAsUser, is an event for the company's webhooks.
type resource[T any, P entity[T]] struct {
	// object is the webhook event_object ("deal").
	object string
	// path is the collection's path segment ("deals").
	path string
	// notFound is the 404 message for an id the caller's company does not have.
	notFound string
	// items returns the server's map of this entity; callers hold s.mu.
	items func(s *Server) map[int64]P
	// fresh returns a new entity with its type's defaults; the handler sets the record fields.
	fresh func() P
	// apply applies input fields; an error is the 400 message.
	apply func(v apiVersion, x P, in input, creating bool) error
	// check, when set, validates x against the rest of the company's data after apply
	// (callers hold s.mu); an error is the answer (see notFoundError).
	check func(s *Server, x P) error
	// filter, when set, reads list query parameters into a predicate; an error is the 400
	// message.
	filter func(r *http.Request) (func(P) bool, error)
	// render renders x for version v; callers hold s.mu.
	render func(s *Server, v apiVersion, x P) map[string]any
}

// notFoundError is a 404 answer from a resource operation.
type notFoundError string

// Error returns the message.
func (e notFoundError) Error() string { return string(e) }

// writeOpError answers err from a resource operation: 404 for notFoundError, else 400.
func writeOpError(w http.ResponseWriter, v apiVersion, err error) {
	var nf notFoundError
	if errors.As(err, &nf) {
		writeAPIError(w, http.StatusNotFound, nf.Error())
		return
	}
	writeInputError(w, v, err.Error())
}

// dealResource serves /api/{v}/deals.
var dealResource = resource[deal, *deal]{
	object:   "deal",
	path:     "deals",
	notFound: MsgDealNotFound,
	items:    func(s *Server) map[int64]*deal { return s.deals },
	fresh:    func() *deal { return &deal{currency: "EUR", status: "open"} },
	apply:    applyDeal,
	render:   (*Server).renderDealLocked,
}

// personResource serves /api/{v}/persons.
var personResource = resource[person, *person]{
	object:   "person",
	path:     "persons",
	notFound: MsgPersonNotFound,
	items:    func(s *Server) map[int64]*person { return s.persons },
	fresh:    func() *person { return &person{} },
	apply:    applyPerson,
	render:   (*Server).renderPersonLocked,
}

// register adds the collection's routes for version v to m: list, create, get, update (PUT in
// v1, PATCH in v2) and delete, each behind acc.
func (rs resource[T, P]) register(m *http.ServeMux, s *Server, v apiVersion, acc access) {
	p := "/api/" + string(v) + "/" + rs.path
	update := "PUT "
	if v == v2 {
		update = "PATCH "
	}
	m.Handle("GET "+p, s.authed(acc, rs.list(s, v)))
	m.Handle("POST "+p, s.authed(acc, rs.create(s, v)))
	m.Handle("GET "+p+"/{id}", s.authed(acc, rs.get(s, v)))
	m.Handle(update+p+"/{id}", s.authed(acc, rs.update(s, v)))
	m.Handle("DELETE "+p+"/{id}", s.authed(acc, rs.delete(s, v)))
}

// objectName is the webhook event_object of the resource.
func (rs resource[T, P]) objectName() string { return rs.object }

// lookupLocked returns the entity id of the caller's company; callers hold s.mu.
func (rs resource[T, P]) lookupLocked(s *Server, g grant, id int64) (P, bool) {
	x, found := rs.items(s)[id]
	if !found || x.base().companyID != g.companyID {
		return nil, false
	}
	return x, true
}

// list serves GET /api/{v}/{path}.
func (rs resource[T, P]) list(s *Server, v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start, limit, err := parsePage(r, v)
		if err != nil {
			writeInputError(w, v, err.Error())
			return
		}
		keep := func(P) bool { return true }
		if rs.filter != nil {
			if keep, err = rs.filter(r); err != nil {
				writeInputError(w, v, err.Error())
				return
			}
		}
		var ch changeWindow
		if v == v2 {
			if ch, err = parseChangeWindow(r); err != nil {
				writeInputError(w, v, err.Error())
				return
			}
		}
		g := principal(r)
		s.mu.Lock()
		var kept []P
		for _, x := range sortedByID(rs.items(s), func(x P) int64 { return x.base().id }) {
			if x.base().companyID == g.companyID && keep(x) && ch.has(x.base()) {
				kept = append(kept, x)
			}
		}
		sortRecords(ch, kept, func(x P) *record { return x.base() })
		var items []map[string]any
		for _, x := range kept {
			items = append(items, rs.render(s, v, x))
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, listBody(v, items, start, limit))
	}
}

// get serves GET /api/{v}/{path}/{id}.
func (rs resource[T, P]) get(s *Server, v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r, v)
		if !ok {
			return
		}
		g := principal(r)
		s.mu.Lock()
		x, found := rs.lookupLocked(s, g, id)
		if !found {
			s.mu.Unlock()
			writeAPIError(w, http.StatusNotFound, rs.notFound)
			return
		}
		body := rs.render(s, v, x)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": body})
	}
}

// create serves POST /api/{v}/{path}.
func (rs resource[T, P]) create(s *Server, v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, err := readInput(w, r)
		if err != nil {
			writeInputError(w, v, err.Error())
			return
		}
		body, _, err := rs.createAs(s, principal(r), v, in, sourceAPI)
		if err != nil {
			writeOpError(w, v, err)
			return
		}
		writeJSON(w, createStatus(v), map[string]any{"success": true, "data": body})
	}
}

// createAs creates an entity in g's company, owned by g's user unless the input names an
// owner, emits the create event (change_source source), and returns it rendered for v with
// the event.
func (rs resource[T, P]) createAs(s *Server, g grant, v apiVersion, in input, source string) (map[string]any, *Event, error) {
	x := rs.fresh()
	b := x.base()
	b.companyID, b.ownerID = g.companyID, g.userID
	if err := rs.apply(v, x, in, true); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs.check != nil {
		if err := rs.check(s, x); err != nil {
			return nil, nil, err
		}
	}
	s.nextID++
	b.id = s.nextID
	b.addTime = s.nowLocked()
	b.updateTime = b.addTime
	rs.items(s)[b.id] = x
	ev := s.emitLocked(g, rs.object, actionCreate, b.id, source, rs.renderBoth(s, x), renderings{})
	return rs.render(s, v, x), ev, nil
}

// update serves PUT /api/v1/{path}/{id} and PATCH /api/v2/{path}/{id}.
func (rs resource[T, P]) update(s *Server, v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r, v)
		if !ok {
			return
		}
		in, err := readInput(w, r)
		if err != nil {
			writeInputError(w, v, err.Error())
			return
		}
		body, _, err := rs.updateAs(s, principal(r), v, id, in, sourceAPI)
		if err != nil {
			writeOpError(w, v, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": body})
	}
}

// updateAs applies input to entity id of g's company, emits the change event, and returns it
// rendered for v with the event. Input is applied to a copy, so an error leaves the stored entity as it was.
func (rs resource[T, P]) updateAs(s *Server, g grant, v apiVersion, id int64, in input, source string) (map[string]any, *Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, found := rs.lookupLocked(s, g, id)
	if !found {
		return nil, nil, notFoundError(rs.notFound)
	}
	updated := *x
	if err := rs.apply(v, &updated, in, false); err != nil {
		return nil, nil, err
	}
	if rs.check != nil {
		if err := rs.check(s, &updated); err != nil {
			return nil, nil, err
		}
	}
	before := rs.renderBoth(s, x)
	P(&updated).base().updateTime = s.nowLocked()
	*x = updated
	ev := s.emitLocked(g, rs.object, actionChange, id, source, rs.renderBoth(s, x), before)
	return rs.render(s, v, x), ev, nil
}

// delete serves DELETE /api/{v}/{path}/{id}.
func (rs resource[T, P]) delete(s *Server, v apiVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r, v)
		if !ok {
			return
		}
		if _, err := rs.deleteAs(s, principal(r), id, sourceAPI); err != nil {
			writeOpError(w, v, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": map[string]any{"id": id}})
	}
}

// deleteAs deletes entity id of g's company and emits the delete event, which it returns.
func (rs resource[T, P]) deleteAs(s *Server, g grant, id int64, source string) (*Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, found := rs.lookupLocked(s, g, id)
	if !found {
		return nil, notFoundError(rs.notFound)
	}
	before := rs.renderBoth(s, x)
	delete(rs.items(s), id)
	return s.emitLocked(g, rs.object, actionDelete, id, source, renderings{}, before), nil
}

// renderBoth renders x for both versions: what v1 and v2 webhooks carry.
func (rs resource[T, P]) renderBoth(s *Server, x P) renderings {
	return renderings{v1: rs.render(s, v1, x), v2: rs.render(s, v2, x)}
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
