package pdsim

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUsersMe checks the identity call after install.
func TestUsersMe(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install()
	r := s.api("GET", "/api/v1/users/me", tok.AccessToken, nil)
	if r.status != 200 {
		t.Fatalf("users/me = %d (%s), want 200", r.status, r.body)
	}
	m := r.json(t)
	d := m["data"].(map[string]any)
	want := map[string]any{
		"id": float64(DefaultUserID), "name": DefaultUserName, "email": DefaultUserEmail,
		"company_id": float64(DefaultCompanyID), "company_name": DefaultCompanyName,
		"company_domain": DefaultCompanyDomain, "is_admin": float64(1), "is_you": true,
	}
	if m["success"] != true {
		t.Errorf("success = %v, want true", m["success"])
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("users/me %s = %v, want %v", k, d[k], v)
		}
	}
}

// TestAPIAuthErrors covers the 400, 401, 403 and 410 rows of the API table.
func TestAPIAuthErrors(t *testing.T) {
	s := newSim(t, Config{})
	full := s.install()
	expired := s.install()
	revoked := s.install()
	if err := s.AddUser(User{ID: 2, CompanyID: 3, Scopes: []string{"deals:read"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActingUser(2); err != nil {
		t.Fatal(err)
	}
	readOnly := s.install()
	if n := s.ExpireAccessTokens(DefaultUserID); n != 3 {
		t.Fatalf("ExpireAccessTokens = %d, want 3", n)
	}
	full = s.refreshToken(full.RefreshToken)
	revoked = s.refreshToken(revoked.RefreshToken)
	if r := s.postForm("/oauth/revoke", formOf("token", revoked.AccessToken)); r.status != 200 {
		t.Fatal(r.status)
	}

	tests := []struct {
		name, method, path, header string
		status                     int
		msg                        string
	}{
		{"no header", "GET", "/api/v2/deals", "", 400, MsgMalformedAuthHeader},
		{"basic scheme", "GET", "/api/v2/deals", "Basic " + full.AccessToken, 400, MsgMalformedAuthHeader},
		{"bearer without token", "GET", "/api/v2/deals", "Bearer ", 400, MsgMalformedAuthHeader},
		{"token without scheme", "GET", "/api/v2/deals", full.AccessToken, 400, MsgMalformedAuthHeader},
		{"unknown token", "GET", "/api/v2/deals", "Bearer v1u:nope", 401, MsgAccessTokenInvalid},
		{"expired token", "GET", "/api/v2/deals", "Bearer " + expired.AccessToken, 401, MsgAccessTokenInvalid},
		{"revoked token", "GET", "/api/v2/deals", "Bearer " + revoked.AccessToken, 401, MsgAccessTokenInvalid},
		{"refresh token as bearer", "GET", "/api/v2/deals", "Bearer " + full.RefreshToken, 401, MsgAccessTokenInvalid},
		{"read scope cannot write", "POST", "/api/v2/deals", "Bearer " + readOnly.AccessToken, 403, MsgScopeMismatch},
		{"read scope cannot patch v2", "PATCH", "/api/v2/deals/1", "Bearer " + readOnly.AccessToken, 403, MsgScopeMismatch},
		{"no contacts scope", "GET", "/api/v2/persons", "Bearer " + readOnly.AccessToken, 403, MsgScopeMismatch},
		{"no base scope", "GET", "/api/v1/users/me", "Bearer " + readOnly.AccessToken, 403, MsgScopeMismatch},
		{"no webhook scope", "GET", "/api/v1/webhooks", "Bearer " + readOnly.AccessToken, 403, MsgScopeMismatch},
		{"retired endpoint", "GET", "/api/v1/deals/timeline", "Bearer " + full.AccessToken, 410, MsgGone},
		{"unknown endpoint", "GET", "/api/v1/nothing", "Bearer " + full.AccessToken, 404, "Unknown method ."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, s.URL+tt.path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			r := do(t, req)
			wantAPIError(t, r, tt.status, tt.msg)
			if tt.status == 403 && r.json(t)["errorCode"] != float64(403) {
				t.Errorf("403 body = %s, want errorCode 403", r.body)
			}
		})
	}
	// The read-only token can read deals.
	if r := s.api("GET", "/api/v2/deals", readOnly.AccessToken, nil); r.status != 200 {
		t.Errorf("GET deals with deals:read = %d, want 200", r.status)
	}
}

// TestGonePathsConfigured checks Config.GonePaths and AddGonePath.
func TestGonePathsConfigured(t *testing.T) {
	s := newSim(t, Config{GonePaths: []string{"/api/v1/old"}})
	tok := s.install()
	wantAPIError(t, s.api("GET", "/api/v1/old", tok.AccessToken, nil), 410, MsgGone)
	// The default list is replaced, so timeline is an ordinary (missing) deal id now.
	if r := s.api("GET", "/api/v1/deals/timeline", tok.AccessToken, nil); r.status != 400 {
		t.Errorf("GET deals/timeline = %d, want 400 (not an id)", r.status)
	}
	s.AddGonePath("/api/v2/deals/1")
	wantAPIError(t, s.api("DELETE", "/api/v2/deals/1", tok.AccessToken, nil), 410, MsgGone)
	if c := s.Counters(); c.APIByRoute["GET /api/v1/old"] != 1 {
		t.Errorf("counters = %v, want GET /api/v1/old counted once", c.APIByRoute)
	}
}

// formOf builds url.Values from key/value pairs.
func formOf(kv ...string) map[string][]string {
	m := map[string][]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = append(m[kv[i]], kv[i+1])
	}
	return m
}

// TestDealsCRUD exercises deals in both API versions.
func TestDealsCRUD(t *testing.T) {
	tests := []struct {
		version, update string
		createStatus    int
		timeLayout      string
	}{
		{"v1", "PUT", 201, time.DateTime},
		{"v2", "PATCH", 200, time.RFC3339},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			s := newSim(t, Config{})
			tok := s.install().AccessToken
			base := "/api/" + tt.version + "/deals"

			list := s.api("GET", base, tok, nil)
			if list.status != 200 {
				t.Fatalf("empty list = %d, want 200", list.status)
			}
			if tt.version == "v1" && list.json(t)["data"] != nil {
				t.Errorf("v1 empty list data = %v, want null", list.json(t)["data"])
			}

			r := s.api("POST", base, tok, map[string]any{"title": "Big one", "value": 1200.5, "currency": "usd"})
			if r.status != tt.createStatus {
				t.Fatalf("create = %d (%s), want %d", r.status, r.body, tt.createStatus)
			}
			d := r.json(t)["data"].(map[string]any)
			id := int64(d["id"].(float64))
			if d["title"] != "Big one" || d["value"] != 1200.5 || d["currency"] != "USD" || d["status"] != "open" {
				t.Errorf("created deal = %v", d)
			}
			if _, err := time.Parse(tt.timeLayout, d["add_time"].(string)); err != nil {
				t.Errorf("add_time %q not in %s layout: %v", d["add_time"], tt.version, err)
			}
			owner := d["user_id"]
			if tt.version == "v2" {
				owner = d["owner_id"]
			} else {
				owner = owner.(map[string]any)["id"]
			}
			if owner != float64(DefaultUserID) {
				t.Errorf("owner = %v, want %d", owner, DefaultUserID)
			}

			path := fmt.Sprintf("%s/%d", base, id)
			if got := s.api("GET", path, tok, nil).json(t)["data"].(map[string]any)["title"]; got != "Big one" {
				t.Errorf("get title = %v, want Big one", got)
			}
			s.clock.Advance(time.Minute)
			r = s.api(tt.update, path, tok, map[string]any{"status": "won"})
			if r.status != 200 {
				t.Fatalf("update = %d (%s), want 200", r.status, r.body)
			}
			d = r.json(t)["data"].(map[string]any)
			if d["status"] != "won" || d["title"] != "Big one" || d["update_time"] == d["add_time"] {
				t.Errorf("updated deal = %v, want status won, title kept, update_time moved", d)
			}
			// The other update verb is not a route in this version.
			other := map[string]string{"PUT": "PATCH", "PATCH": "PUT"}[tt.update]
			if r := s.api(other, path, tok, map[string]any{"status": "lost"}); r.status != 404 {
				t.Errorf("%s in %s = %d, want 404", other, tt.version, r.status)
			}

			items := s.api("GET", base, tok, nil).json(t)["data"].([]any)
			if len(items) != 1 {
				t.Errorf("list = %d items, want 1", len(items))
			}
			if r := s.api("DELETE", path, tok, nil); r.status != 200 || r.json(t)["data"].(map[string]any)["id"] != float64(id) {
				t.Errorf("delete = %d (%s), want 200 with id", r.status, r.body)
			}
			wantAPIError(t, s.api("GET", path, tok, nil), 404, MsgDealNotFound)
			wantAPIError(t, s.api(tt.update, path, tok, map[string]any{"title": "x"}), 404, MsgDealNotFound)
			wantAPIError(t, s.api("DELETE", path, tok, nil), 404, MsgDealNotFound)
		})
	}
}

// TestPersonsCRUD exercises persons in both API versions.
func TestPersonsCRUD(t *testing.T) {
	tests := []struct {
		version, update, emailKey string
		body                      map[string]any
	}{
		{"v1", "PUT", "email", map[string]any{"name": "Grace Hopper", "email": "grace@navy.example"}},
		{"v2", "PATCH", "emails", map[string]any{"name": "Grace Hopper", "emails": []any{map[string]any{"value": "grace@navy.example", "primary": true, "label": "work"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			s := newSim(t, Config{})
			tok := s.install().AccessToken
			base := "/api/" + tt.version + "/persons"
			r := s.api("POST", base, tok, tt.body)
			if r.status != 200 && r.status != 201 {
				t.Fatalf("create = %d (%s), want 2xx", r.status, r.body)
			}
			p := r.json(t)["data"].(map[string]any)
			emails := p[tt.emailKey].([]any)
			if p["name"] != "Grace Hopper" || p["first_name"] != "Grace" || len(emails) != 1 || emails[0].(map[string]any)["value"] != "grace@navy.example" {
				t.Errorf("created person = %v", p)
			}
			pid := int64(p["id"].(float64))
			path := fmt.Sprintf("%s/%d", base, pid)
			if list := s.api("GET", base, tok, nil).json(t)["data"].([]any); len(list) != 1 {
				t.Errorf("list = %d persons, want 1", len(list))
			}
			// A deal linked to the person: v1 nests the person, v2 gives its id.
			d := s.api("POST", "/api/"+tt.version+"/deals", tok, map[string]any{"title": "linked", "person_id": pid}).json(t)["data"].(map[string]any)
			if tt.version == "v1" {
				ref, _ := d["person_id"].(map[string]any)
				if ref["value"] != float64(pid) || ref["name"] != "Grace Hopper" {
					t.Errorf("v1 deal person_id = %v, want a nested object for person %d", d["person_id"], pid)
				}
			} else if d["person_id"] != float64(pid) {
				t.Errorf("v2 deal person_id = %v, want %d", d["person_id"], pid)
			}
			r = s.api(tt.update, path, tok, map[string]any{"name": "Grace B. Hopper"})
			if r.status != 200 || r.json(t)["data"].(map[string]any)["name"] != "Grace B. Hopper" {
				t.Errorf("update = %d (%s), want 200 with new name", r.status, r.body)
			}
			if r := s.api("DELETE", path, tok, nil); r.status != 200 {
				t.Errorf("delete = %d, want 200", r.status)
			}
			wantAPIError(t, s.api("GET", path, tok, nil), 404, MsgPersonNotFound)
		})
	}
}

// TestInvalidInput checks 400 answers for bad bodies and parameters.
func TestInvalidInput(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	created := s.api("POST", "/api/v2/deals", tok, map[string]any{"title": "t"}).json(t)["data"].(map[string]any)
	dealPath := fmt.Sprintf("/api/v2/deals/%d", int64(created["id"].(float64)))
	tests := []struct {
		name, method, path, body, msg string
	}{
		{"deal without title", "POST", "/api/v2/deals", `{"value":3}`, "Deal title must be given."},
		{"deal with empty title", "PATCH", dealPath, `{"title":" "}`, "Deal title must be given."},
		{"deal with bad status", "PATCH", dealPath, `{"status":"maybe"}`, "status must be one of open, won, lost"},
		{"deal with text value", "POST", "/api/v2/deals", `{"title":"t","value":"lots"}`, "value must be a number"},
		{"person without name", "POST", "/api/v2/persons", `{"emails":[]}`, "Name must be given."},
		{"invalid json", "POST", "/api/v2/deals", `{"title":`, "Invalid JSON in request body"},
		{"json array", "POST", "/api/v2/persons", `[1,2]`, "Invalid JSON in request body"},
		{"bad id", "GET", "/api/v2/deals/abc", ``, "id must be a positive integer"},
		{"bad limit", "GET", "/api/v2/deals?limit=0", ``, "limit must be an integer between 1 and 500"},
		{"bad cursor", "GET", "/api/v2/deals?cursor=bm90IGEgY3Vyc29y", ``, "Invalid cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, s.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			r := do(t, req)
			wantAPIError(t, r, 400, tt.msg)
			if r.json(t)["code"] != CodeSchemaValidation {
				t.Errorf("v2 400 body = %s, want code %s", r.body, CodeSchemaValidation)
			}
		})
	}
}

// TestFormBody checks that v1 accepts form-encoded bodies too.
func TestFormBody(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	req, err := http.NewRequest("POST", s.URL+"/api/v1/deals", strings.NewReader("title=Form+deal&value=12"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := do(t, req)
	if r.status != 201 {
		t.Fatalf("create with form = %d (%s), want 201", r.status, r.body)
	}
	if d := r.json(t)["data"].(map[string]any); d["title"] != "Form deal" || d["value"] != float64(12) {
		t.Errorf("deal = %v, want title Form deal, value 12", d)
	}
}

// TestPagination checks v1 start/limit and v2 cursors.
func TestPagination(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	for i := range 5 {
		s.api("POST", "/api/v2/deals", tok, map[string]any{"title": fmt.Sprint("d", i)})
	}
	m := s.api("GET", "/api/v1/deals?start=2&limit=2", tok, nil).json(t)
	p := m["additional_data"].(map[string]any)["pagination"].(map[string]any)
	if len(m["data"].([]any)) != 2 || p["more_items_in_collection"] != true || p["next_start"] != float64(4) {
		t.Errorf("v1 page = %v, want 2 items, more, next_start 4", m)
	}
	var titles []string
	cursor := ""
	for range 10 {
		path := "/api/v2/deals?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		m := s.api("GET", path, tok, nil).json(t)
		for _, d := range m["data"].([]any) {
			titles = append(titles, d.(map[string]any)["title"].(string))
		}
		next, _ := m["additional_data"].(map[string]any)["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if strings.Join(titles, ",") != "d0,d1,d2,d3,d4" {
		t.Errorf("v2 pages = %v, want d0..d4 in order", titles)
	}
}

// TestCompanyIsolation checks that one company's token cannot see another's deals.
func TestCompanyIsolation(t *testing.T) {
	s := newSim(t, Config{})
	a := s.install().AccessToken
	if err := s.AddUser(User{ID: 9, CompanyID: 99}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActingUser(9); err != nil {
		t.Fatal(err)
	}
	b := s.install().AccessToken
	id := s.api("POST", "/api/v2/deals", a, map[string]any{"title": "secret"}).json(t)["data"].(map[string]any)["id"]
	wantAPIError(t, s.api("GET", fmt.Sprintf("/api/v2/deals/%v", id), b, nil), 404, MsgDealNotFound)
	if got := s.api("GET", "/api/v2/deals", b, nil).json(t)["data"].([]any); len(got) != 0 {
		t.Errorf("other company's list = %v, want empty", got)
	}
}

// TestListUpdatedSince checks the v2 change window: updated_since (inclusive) and
// updated_until (exclusive) on update_time, sort_by/sort_direction, cursor pages over the
// window, and 400 for malformed values.
func TestListUpdatedSince(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	ids := make([]int64, 4)
	for i := range ids {
		ids[i] = int64(s.api("POST", "/api/v2/persons", tok, map[string]any{"name": fmt.Sprint("p", i)}).json(t)["data"].(map[string]any)["id"].(float64))
		s.clock.Advance(time.Minute)
	}
	// p0 changes last: t0+4m.
	s.api("PATCH", fmt.Sprintf("/api/v2/persons/%d", ids[0]), tok, map[string]any{"name": "p0 again"})
	names := func(path string) []string {
		t.Helper()
		var out []string
		cursor := ""
		for range 10 {
			p := path + "&limit=1"
			if cursor != "" {
				p += "&cursor=" + cursor
			}
			r := s.api("GET", p, tok, nil)
			if r.status != 200 {
				t.Fatalf("GET %s = %d %s, want 200", p, r.status, r.body)
			}
			m := r.json(t)
			for _, d := range m["data"].([]any) {
				out = append(out, d.(map[string]any)["name"].(string))
			}
			next, _ := m["additional_data"].(map[string]any)["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		return out
	}
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	tests := []struct {
		name, query, want string
	}{
		{"since, by id", "updated_since=" + at(2*time.Minute), "p0 again,p2,p3"},
		{"since, by update_time", "updated_since=" + at(2*time.Minute) + "&sort_by=update_time", "p2,p3,p0 again"},
		{"window", "updated_since=" + at(time.Minute) + "&updated_until=" + at(3*time.Minute), "p1,p2"},
		{"descending", "updated_since=" + at(0) + "&sort_by=update_time&sort_direction=desc", "p0 again,p3,p2,p1"},
		{"nothing changed", "updated_since=" + at(time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(names("/api/v2/persons?"+tt.query), ","); got != tt.want {
				t.Errorf("GET /api/v2/persons?%s = %q, want %q", tt.query, got, tt.want)
			}
		})
	}
	for _, q := range []string{"updated_since=yesterday", "updated_until=2025-13-01T00:00:00Z", "sort_by=title", "sort_direction=up"} {
		if r := s.api("GET", "/api/v2/persons?"+q, tok, nil); r.status != 400 {
			t.Errorf("GET /api/v2/persons?%s = %d, want 400", q, r.status)
		}
	}
}
