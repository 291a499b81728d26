package pdsim

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// searchAccess is the scope of /api/v2/itemSearch (search:read only, as Pipedrive's OpenAPI
// says); the per-entity searches need their entity's read scope instead.
var searchAccess = access{read: []string{"search:read"}}

// searchQuery is a parsed v2 search request: term, exact_match, fields and the cursor page.
type searchQuery struct {
	term   string // lower-cased
	exact  bool
	fields map[string]bool // empty: all of the entity's fields
	start  int
	limit  int
}

// searchHit is one entity that matched, rendered as a v2 search item, with its score.
type searchHit struct {
	score float64
	id    int64
	item  map[string]any
}

// The searchable fields of each entity type (Pipedrive's v2 search docs; custom_fields and
// notes are accepted and never match: the simulator stores neither).
var searchFields = map[string][]string{
	"deal":         {"custom_fields", "notes", "title"},
	"person":       {"custom_fields", "email", "name", "notes", "phone"},
	"organization": {"address", "custom_fields", "name", "notes"},
}

// itemTypes are the item_types /api/v2/itemSearch accepts; the simulator stores deals,
// persons and organizations, so the others never match.
var itemTypes = []string{"deal", "person", "organization", "product", "lead", "file", "mail_attachment", "project"}

// parseSearch reads term, exact_match, fields (checked against allowed), limit and cursor.
// An error is the 400 message.
func parseSearch(r *http.Request, allowed []string) (searchQuery, error) {
	q := r.URL.Query()
	var sq searchQuery
	exact, err := v2Bool(q.Get("exact_match"), "exact_match")
	if err != nil {
		return sq, err
	}
	sq.exact = exact
	sq.term = strings.ToLower(strings.TrimSpace(q.Get("term")))
	if minLen := 2 - boolInt(exact); len([]rune(sq.term)) < minLen {
		return sq, errors.New("term must be at least " + strconv.Itoa(minLen) + " characters long")
	}
	sq.fields = map[string]bool{}
	if f := q.Get("fields"); f != "" {
		for _, name := range strings.Split(f, ",") {
			if !slices.Contains(allowed, name) {
				return sq, errors.New("fields must be a comma-separated list of " + strings.Join(allowed, ", "))
			}
			sq.fields[name] = true
		}
	}
	sq.start, sq.limit, err = parsePage(r, v2)
	return sq, err
}

// v2Bool parses a v2 boolean query parameter: "true" or "false" only (v2 no longer takes 1/0).
func v2Bool(s, key string) (bool, error) {
	switch s {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, errors.New(key + " must be a boolean")
}

// boolInt is 1 for true.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// wants reports whether field is searched: every field when none were named.
func (sq searchQuery) wants(field string) bool { return len(sq.fields) == 0 || sq.fields[field] }

// score matches the term against values: 1 for a value equal to the term (case-insensitive),
// otherwise, unless exact_match, the share of the best value the term covers; 0 is no match.
func (sq searchQuery) score(values ...string) float64 {
	best := 0.0
	for _, v := range values {
		v = strings.ToLower(v)
		switch {
		case v == "":
		case v == sq.term:
			return 1
		case !sq.exact && strings.Contains(v, sq.term):
			best = max(best, float64(len(sq.term))/float64(len(v)))
		}
	}
	return best
}

// contactValues are the values of an email or phone list.
func contactValues(cs []contact) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Value)
	}
	return out
}

// searchDealsLocked returns the deals of companyID that match sq and the deal filters
// (person_id, organization_id, status); callers hold s.mu.
func (s *Server) searchDealsLocked(companyID int64, sq searchQuery, f searchFilter) []searchHit {
	var hits []searchHit
	for _, d := range s.deals {
		if d.companyID != companyID || !f.keepDeal(d) || !sq.wants("title") {
			continue
		}
		if sc := sq.score(d.title); sc > 0 {
			var personRef any
			if p, ok := s.persons[d.personID]; ok && p.companyID == d.companyID {
				personRef = map[string]any{"id": p.id, "name": p.name}
			}
			hits = append(hits, searchHit{score: sc, id: d.id, item: map[string]any{
				"id": d.id, "type": "deal", "title": d.title, "value": d.value, "currency": d.currency,
				"status": d.status, "visible_to": 3, "owner": map[string]any{"id": d.ownerID},
				"stage": map[string]any{"id": 1, "name": "Qualified"}, "person": personRef,
				"organization": nil, "custom_fields": []string{}, "notes": []string{},
			}})
		}
	}
	return hits
}

// searchPersonsLocked returns the persons of companyID that match sq by name, email or
// phone; callers hold s.mu.
func (s *Server) searchPersonsLocked(companyID int64, sq searchQuery, f searchFilter) []searchHit {
	var hits []searchHit
	for _, p := range s.persons {
		if p.companyID != companyID || f.orgID != 0 {
			continue
		}
		var values []string
		if sq.wants("name") {
			values = append(values, p.name)
		}
		if sq.wants("email") {
			values = append(values, contactValues(p.emails)...)
		}
		if sq.wants("phone") {
			values = append(values, contactValues(p.phones)...)
		}
		if sc := sq.score(values...); sc > 0 {
			hits = append(hits, searchHit{score: sc, id: p.id, item: map[string]any{
				"id": p.id, "type": "person", "name": p.name,
				"emails": contactValues(p.emails), "phones": contactValues(p.phones),
				"visible_to": 3, "owner": map[string]any{"id": p.ownerID}, "organization": nil,
				"custom_fields": []string{}, "notes": []string{},
			}})
		}
	}
	return hits
}

// searchOrganizationsLocked returns the organizations of companyID whose name matches sq;
// callers hold s.mu.
func (s *Server) searchOrganizationsLocked(companyID int64, sq searchQuery) []searchHit {
	var hits []searchHit
	for _, o := range s.orgs {
		if o.companyID != companyID || !sq.wants("name") {
			continue
		}
		if sc := sq.score(o.name); sc > 0 {
			hits = append(hits, searchHit{score: sc, id: o.id, item: map[string]any{
				"id": o.id, "type": "organization", "name": o.name, "address": nil,
				"visible_to": 3, "owner": map[string]any{"id": o.ownerID},
				"custom_fields": []string{}, "notes": []string{},
			}})
		}
	}
	return hits
}

// searchFilter holds the optional filters of the entity searches.
type searchFilter struct {
	personID, orgID int64
	status          string
}

// keepDeal reports whether d passes the filters. The simulator links no deal to an
// organization, so an organization_id filter keeps none.
func (f searchFilter) keepDeal(d *deal) bool {
	return (f.personID == 0 || d.personID == f.personID) && f.orgID == 0 && (f.status == "" || d.status == f.status)
}

// parseSearchFilter reads person_id, organization_id and status. An error is the 400 message.
func parseSearchFilter(r *http.Request) (searchFilter, error) {
	q := r.URL.Query()
	var f searchFilter
	for key, dst := range map[string]*int64{"person_id": &f.personID, "organization_id": &f.orgID} {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return f, errors.New(key + " must be a positive integer")
			}
			*dst = n
		}
	}
	if st := q.Get("status"); st != "" {
		if !slices.Contains(dealStatuses, st) {
			return f, errors.New("status must be one of open, won, lost")
		}
		f.status = st
	}
	return f, nil
}

// searchBody renders a v2 search answer: the hits best first (then by id), one cursor page.
func searchBody(hits []searchHit, start, limit int) map[string]any {
	slices.SortFunc(hits, func(a, b searchHit) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return cmpInt64(a.id, b.id)
	})
	items := make([]map[string]any, 0, len(hits))
	for _, h := range hits {
		items = append(items, map[string]any{"result_score": h.score, "item": h.item})
	}
	page := listBody(v2, items, start, limit)
	page["data"] = map[string]any{"items": page["data"]}
	return page
}

// handleEntitySearch serves GET /api/v2/{deals,persons,organizations}/search for object.
func (s *Server) handleEntitySearch(object string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sq, err := parseSearch(r, searchFields[object])
		if err != nil {
			writeInputError(w, v2, err.Error())
			return
		}
		f, err := parseSearchFilter(r)
		if err != nil {
			writeInputError(w, v2, err.Error())
			return
		}
		g := principal(r)
		s.mu.Lock()
		var hits []searchHit
		switch object {
		case "deal":
			hits = s.searchDealsLocked(g.companyID, sq, f)
		case "person":
			hits = s.searchPersonsLocked(g.companyID, sq, f)
		case "organization":
			hits = s.searchOrganizationsLocked(g.companyID, sq)
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, searchBody(hits, sq.start, sq.limit))
	}
}

// handleItemSearch serves GET /api/v2/itemSearch: deals, persons and organizations at once,
// narrowed by item_types.
func (s *Server) handleItemSearch(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, fs := range searchFields {
		allowed = append(allowed, fs...)
	}
	allowed = append(allowed, "code", "organization_name", "person_name", "title", "description")
	sq, err := parseSearch(r, allowed)
	if err != nil {
		writeInputError(w, v2, err.Error())
		return
	}
	types := map[string]bool{}
	if t := r.URL.Query().Get("item_types"); t != "" {
		for _, it := range strings.Split(t, ",") {
			if !slices.Contains(itemTypes, it) {
				writeInputError(w, v2, "item_types must be a comma-separated list of "+strings.Join(itemTypes, ", "))
				return
			}
			types[it] = true
		}
	}
	want := func(it string) bool { return len(types) == 0 || types[it] }
	g := principal(r)
	s.mu.Lock()
	var hits []searchHit
	if want("deal") {
		hits = append(hits, s.searchDealsLocked(g.companyID, sq, searchFilter{})...)
	}
	if want("person") {
		hits = append(hits, s.searchPersonsLocked(g.companyID, sq, searchFilter{})...)
	}
	if want("organization") {
		hits = append(hits, s.searchOrganizationsLocked(g.companyID, sq)...)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, searchBody(hits, sq.start, sq.limit))
}
