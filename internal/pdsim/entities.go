package pdsim

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// organization is a stored organization.
type organization struct {
	record
	name string
}

// activity is a stored activity.
type activity struct {
	record
	subject, typ, dueDate   string
	done                    bool
	dealID, personID, orgID int64
}

// note is a stored note. Notes exist in API v1 only (Pipedrive has no v2 notes endpoint).
type note struct {
	record
	content                 string
	dealID, personID, orgID int64
	leadID                  string
	pinnedToDeal            bool
}

// The 400 messages of the entities below. Plausible wording, not captured from Pipedrive.
const (
	msgOrganizationNotFound = "Organization not found"
	msgActivityNotFound     = "Activity not found"
	// MsgNoteNotFound is the 404 answer for a note id the caller's company does not have.
	MsgNoteNotFound = "Note not found"
	// MsgNoteContent is the 400 answer for a note without content.
	MsgNoteContent = "Content must be given."
	// MsgNoteParent is the 400 answer for a note attached to nothing.
	MsgNoteParent = "A deal, person, organization or lead must be given."
)

// organizationResource serves /api/{v}/organizations.
var organizationResource = resource[organization, *organization]{
	object:   "organization",
	path:     "organizations",
	notFound: msgOrganizationNotFound,
	items:    func(s *Server) map[int64]*organization { return s.orgs },
	fresh:    func() *organization { return &organization{} },
	apply: func(_ apiVersion, o *organization, in input, creating bool) error {
		if err := applyRequired(in, "name", "Name must be given.", creating, &o.name); err != nil {
			return err
		}
		return applyOwner(in, "owner_id", &o.record)
	},
	render: func(s *Server, v apiVersion, o *organization) map[string]any {
		out := map[string]any{
			"id": o.id, "name": o.name,
			"add_time": formatTime(v, o.addTime), "update_time": formatTime(v, o.updateTime),
		}
		if v == v1 {
			out["owner_id"] = s.userRefLocked(o.ownerID)
			out["active_flag"] = true
		} else {
			out["owner_id"] = o.ownerID
			out["is_deleted"] = false
		}
		return out
	},
}

// activityResource serves /api/{v}/activities.
var activityResource = resource[activity, *activity]{
	object:   "activity",
	path:     "activities",
	notFound: msgActivityNotFound,
	items:    func(s *Server) map[int64]*activity { return s.activities },
	fresh:    func() *activity { return &activity{typ: "task"} },
	apply:    applyActivity,
	render: func(s *Server, v apiVersion, a *activity) map[string]any {
		out := map[string]any{
			"id": a.id, "subject": a.subject, "type": a.typ, "done": a.done,
			"due_date": nullable(a.dueDate), "deal_id": nullID(a.dealID), "person_id": nullID(a.personID),
			"org_id": nullID(a.orgID), "add_time": formatTime(v, a.addTime), "update_time": formatTime(v, a.updateTime),
		}
		if v == v1 {
			out["user_id"] = a.ownerID
			out["active_flag"] = true
		} else {
			out["owner_id"] = a.ownerID
			out["is_deleted"] = false
		}
		return out
	},
}

// applyActivity applies input fields to a. An error is the 400 message.
func applyActivity(v apiVersion, a *activity, in input, creating bool) error {
	if err := applyRequired(in, "subject", "Subject must be given.", creating, &a.subject); err != nil {
		return err
	}
	if t, has, err := in.str("type"); err != nil {
		return err
	} else if has && t != "" {
		a.typ = t
	}
	if d, has, err := in.str("due_date"); err != nil {
		return err
	} else if has {
		a.dueDate = d
	}
	if done, has, err := in.flag("done"); err != nil {
		return err
	} else if has {
		a.done = done
	}
	for key, dst := range map[string]*int64{"deal_id": &a.dealID, "person_id": &a.personID, "org_id": &a.orgID} {
		if id, has, err := in.id(key); err != nil {
			return err
		} else if has {
			*dst = id
		}
	}
	ownerKey := "user_id"
	if v == v2 {
		ownerKey = "owner_id"
	}
	return applyOwner(in, ownerKey, &a.record)
}

// noteResource serves /api/v1/notes (Pipedrive's notes API is v1 only).
var noteResource = resource[note, *note]{
	object:   "note",
	path:     "notes",
	notFound: MsgNoteNotFound,
	items:    func(s *Server) map[int64]*note { return s.notes },
	fresh:    func() *note { return &note{} },
	apply:    applyNote,
	check:    (*Server).checkNoteLocked,
	filter:   noteFilter,
	render:   (*Server).renderNoteLocked,
}

// applyNote applies input fields to n: content (required on create), deal_id, person_id,
// org_id, lead_id, user_id (the author) and pinned_to_deal_flag.
func applyNote(_ apiVersion, n *note, in input, creating bool) error {
	if err := applyRequired(in, "content", MsgNoteContent, creating, &n.content); err != nil {
		return err
	}
	for key, dst := range map[string]*int64{"deal_id": &n.dealID, "person_id": &n.personID, "org_id": &n.orgID} {
		if id, has, err := in.id(key); err != nil {
			return err
		} else if has {
			*dst = id
		}
	}
	if l, has, err := in.str("lead_id"); err != nil {
		return err
	} else if has {
		n.leadID = l
	}
	if p, has, err := in.flag("pinned_to_deal_flag"); err != nil {
		return err
	} else if has {
		n.pinnedToDeal = p
	}
	if n.dealID == 0 && n.personID == 0 && n.orgID == 0 && n.leadID == "" {
		return inputError(MsgNoteParent)
	}
	return applyOwner(in, "user_id", &n.record)
}

// checkNoteLocked answers 404 when the note names a deal, person or organization its company
// does not have.
func (s *Server) checkNoteLocked(n *note) error {
	if d, ok := s.deals[n.dealID]; n.dealID != 0 && (!ok || d.companyID != n.companyID) {
		return notFoundError(MsgDealNotFound)
	}
	if p, ok := s.persons[n.personID]; n.personID != 0 && (!ok || p.companyID != n.companyID) {
		return notFoundError(MsgPersonNotFound)
	}
	if o, ok := s.orgs[n.orgID]; n.orgID != 0 && (!ok || o.companyID != n.companyID) {
		return notFoundError(msgOrganizationNotFound)
	}
	return nil
}

// noteFilter reads GET /api/v1/notes filters: deal_id, person_id, org_id, lead_id.
func noteFilter(r *http.Request) (func(*note) bool, error) {
	q := r.URL.Query()
	ids := map[string]int64{}
	for _, key := range []string{"deal_id", "person_id", "org_id"} {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return nil, errors.New(key + " must be a positive integer")
			}
			ids[key] = n
		}
	}
	lead := q.Get("lead_id")
	return func(n *note) bool {
		return (ids["deal_id"] == 0 || n.dealID == ids["deal_id"]) &&
			(ids["person_id"] == 0 || n.personID == ids["person_id"]) &&
			(ids["org_id"] == 0 || n.orgID == ids["org_id"]) &&
			(lead == "" || n.leadID == lead)
	}, nil
}

// renderNoteLocked renders n. v1 is the notes API shape (with deal/person/organization/user
// summaries); v2 (webhooks v2 only) keeps the ids and RFC 3339 times.
func (s *Server) renderNoteLocked(v apiVersion, n *note) map[string]any {
	out := map[string]any{
		"id":                  n.id,
		"content":             n.content,
		"deal_id":             nullID(n.dealID),
		"person_id":           nullID(n.personID),
		"org_id":              nullID(n.orgID),
		"lead_id":             nullable(n.leadID),
		"user_id":             n.ownerID,
		"add_time":            formatTime(v, n.addTime),
		"update_time":         formatTime(v, n.updateTime),
		"pinned_to_deal_flag": n.pinnedToDeal,
	}
	if v == v1 {
		out["active_flag"] = true
		out["last_update_user_id"] = n.ownerID
		out["pinned_to_person_flag"] = false
		out["pinned_to_organization_flag"] = false
		out["pinned_to_lead_flag"] = false
		out["deal"], out["person"], out["organization"] = nil, nil, nil
		if d, ok := s.deals[n.dealID]; ok {
			out["deal"] = map[string]any{"title": d.title}
		}
		if p, ok := s.persons[n.personID]; ok {
			out["person"] = map[string]any{"name": p.name}
		}
		if o, ok := s.orgs[n.orgID]; ok {
			out["organization"] = map[string]any{"name": o.name}
		}
		u := s.users[n.ownerID]
		out["user"] = map[string]any{"email": u.Email, "name": u.Name, "icon_url": nil, "is_you": true}
	} else {
		out["is_deleted"] = false
	}
	return out
}

// nullID renders 0 as null.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// flag returns a boolean field given as true/false, 1/0 or their strings (form bodies).
func (in input) flag(key string) (v bool, present bool, err error) {
	raw, ok := in[key]
	if !ok || raw == nil {
		return false, ok, nil
	}
	var text string
	switch x := raw.(type) {
	case bool:
		return x, true, nil
	case string:
		text = x
	case json.Number:
		text = x.String()
	}
	switch strings.ToLower(text) {
	case "1", "true":
		return true, true, nil
	case "0", "false":
		return false, true, nil
	}
	return false, true, errors.New(key + " must be a boolean")
}
