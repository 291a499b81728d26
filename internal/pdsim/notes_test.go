package pdsim

import (
	"fmt"
	"testing"
)

// TestNotesAPI checks POST/GET /api/v1/notes row by row.
func TestNotesAPI(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	deal := s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "Noted"})
	other := s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "Other"})
	person := s.created("POST", "/api/v2/persons", tok, map[string]any{"name": "Ann Lee"})

	tests := []struct {
		name   string
		body   map[string]any
		status int
		msg    string // error message, for 4xx
	}{
		{"on a deal", map[string]any{"content": "<p>Hello</p>", "deal_id": deal}, 201, ""},
		{"on a person, id as string", map[string]any{"content": "Call back", "person_id": fmt.Sprint(person)}, 201, ""},
		{"pinned", map[string]any{"content": "Pinned", "deal_id": other, "pinned_to_deal_flag": 1}, 201, ""},
		{"no content", map[string]any{"deal_id": deal}, 400, MsgNoteContent},
		{"blank content", map[string]any{"content": "  ", "deal_id": deal}, 400, MsgNoteContent},
		{"attached to nothing", map[string]any{"content": "x"}, 400, MsgNoteParent},
		{"unknown deal", map[string]any{"content": "x", "deal_id": 9999}, 404, MsgDealNotFound},
		{"bad deal id", map[string]any{"content": "x", "deal_id": "abc"}, 400, "deal_id must be an integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.api("POST", "/api/v1/notes", tok, tt.body)
			if tt.status != 201 {
				wantAPIError(t, r, tt.status, tt.msg)
				return
			}
			if r.status != 201 {
				t.Fatalf("POST /api/v1/notes = %d (%s), want 201", r.status, r.body)
			}
			d := r.json(t)["data"].(map[string]any)
			if d["content"] != tt.body["content"] || d["user_id"] != float64(DefaultUserID) || d["active_flag"] != true || d["add_time"] != "2025-03-04 10:00:00" {
				t.Errorf("note = %v, want content %v by the caller, v1 time", d, tt.body["content"])
			}
		})
	}

	// List filtered by deal, get by id, 404.
	r := s.api("GET", fmt.Sprintf("/api/v1/notes?deal_id=%d", deal), tok, nil)
	list, _ := r.json(t)["data"].([]any)
	if r.status != 200 || len(list) != 1 {
		t.Fatalf("GET notes?deal_id = %d, %d notes (%s), want 1", r.status, len(list), r.body)
	}
	n := list[0].(map[string]any)
	if n["deal_id"] != float64(deal) || n["deal"].(map[string]any)["title"] != "Noted" {
		t.Errorf("listed note = %v, want the note on deal %d with its title", n, deal)
	}
	if all := s.api("GET", "/api/v1/notes", tok, nil).json(t)["data"].([]any); len(all) != 3 {
		t.Errorf("GET notes = %d notes, want 3", len(all))
	}
	id := int64(n["id"].(float64))
	if g := s.api("GET", fmt.Sprintf("/api/v1/notes/%d", id), tok, nil); g.status != 200 || g.json(t)["data"].(map[string]any)["content"] != "<p>Hello</p>" {
		t.Errorf("GET note = %d (%s), want the note", g.status, g.body)
	}
	wantAPIError(t, s.api("GET", "/api/v1/notes/9999", tok, nil), 404, MsgNoteNotFound)
	wantAPIError(t, s.api("GET", "/api/v1/notes?deal_id=x", tok, nil), 400, "deal_id must be a positive integer")
	if r := s.api("GET", "/api/v2/notes", tok, nil); r.status != 404 {
		t.Errorf("GET /api/v2/notes = %d, want 404 (notes are v1 only)", r.status)
	}
}

// TestNotesScopes checks that deals or contacts scopes reach notes.
func TestNotesScopes(t *testing.T) {
	tests := []struct {
		scope              string
		listWant, postWant int
	}{
		{"deals:full", 200, 400},
		{"contacts:read", 200, 403},
		{"activities:full", 403, 403},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			s := newSim(t, Config{Scopes: []string{"base", tt.scope}})
			tok := s.install().AccessToken
			if r := s.api("GET", "/api/v1/notes", tok, nil); r.status != tt.listWant {
				t.Errorf("GET notes with %s = %d, want %d", tt.scope, r.status, tt.listWant)
			}
			// An empty body passes the scope check and fails validation (400).
			if r := s.api("POST", "/api/v1/notes", tok, map[string]any{}); r.status != tt.postWant {
				t.Errorf("POST notes with %s = %d, want %d", tt.scope, r.status, tt.postWant)
			}
		})
	}
}
