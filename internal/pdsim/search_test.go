package pdsim

import (
	"fmt"
	"net/url"
	"strconv"
	"testing"
)

// searchItems returns the items of a v2 search answer (type:id, best first) and next_cursor.
func searchItems(t *testing.T, r response) ([]string, any) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("search = %d %s, want 200", r.status, r.body)
	}
	m := r.json(t)
	var out []string
	for _, it := range m["data"].(map[string]any)["items"].([]any) {
		item := it.(map[string]any)["item"].(map[string]any)
		out = append(out, fmt.Sprintf("%s:%v", item["type"], item["id"]))
	}
	return out, m["additional_data"].(map[string]any)["next_cursor"]
}

// TestSearchV2: the v2 search endpoints find the caller's company's deals, persons and
// organizations, best match first, with cursor pages and v2 validation errors.
func TestSearchV2(t *testing.T) {
	s := newSim(t, Config{Scopes: []string{"base", "deals:full", "contacts:full", "search:read"}})
	tok := s.install().AccessToken
	bigDeal := s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "Acme big deal"})
	acme := s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "acme", "status": "won"})
	jane := s.created("POST", "/api/v2/persons", tok, map[string]any{"name": "Jane Acme", "emails": []any{map[string]any{"value": "jane@example.org", "primary": true}}})
	org := s.created("POST", "/api/v2/organizations", tok, map[string]any{"name": "Acme Inc"})
	id := func(typ string, n int64) string { return typ + ":" + strconv.FormatInt(n, 10) }
	// search calls p in a fresh search window (10 calls per 2 s).
	search := func(p string) response {
		s.clock.Advance(DefaultRateWindow)
		return s.api("GET", p, tok, nil)
	}

	tests := []struct {
		name, path string
		want       []string
	}{
		{"deals, exact title first", "/api/v2/deals/search?term=ACME", []string{id("deal", acme), id("deal", bigDeal)}},
		{"deals exact_match", "/api/v2/deals/search?term=acme&exact_match=true", []string{id("deal", acme)}},
		{"deals by status", "/api/v2/deals/search?term=acme&status=open", []string{id("deal", bigDeal)}},
		{"persons by email", "/api/v2/persons/search?term=jane%40example", []string{id("person", jane)}},
		{"persons by name only", "/api/v2/persons/search?term=example&fields=name", nil},
		{"organizations", "/api/v2/organizations/search?term=acme", []string{id("organization", org)}},
		{"itemSearch, all types", "/api/v2/itemSearch?term=acme", []string{id("deal", acme), id("organization", org), id("person", jane), id("deal", bigDeal)}},
		{"itemSearch, item_types", "/api/v2/itemSearch?term=acme&item_types=person,organization", []string{id("organization", org), id("person", jane)}},
		{"no match", "/api/v2/deals/search?term=zz", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := searchItems(t, search(tt.path))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("GET %s = %v, want %v", tt.path, got, tt.want)
			}
		})
	}

	// Cursor pages.
	first, next := searchItems(t, search("/api/v2/deals/search?term=acme&limit=1"))
	if len(first) != 1 || next == nil {
		t.Fatalf("first page = %v, next_cursor %v; want one item and a cursor", first, next)
	}
	second, last := searchItems(t, search("/api/v2/deals/search?term=acme&limit=1&cursor="+url.QueryEscape(next.(string))))
	if len(second) != 1 || second[0] == first[0] || last != nil {
		t.Errorf("second page = %v, next_cursor %v; want the other deal and no cursor", second, last)
	}

	// Validation errors are v2's: 400 with code ERR_SCHEMA_VALIDATION_FAILED.
	for _, p := range []string{
		"/api/v2/deals/search?term=a",
		"/api/v2/deals/search",
		"/api/v2/deals/search?term=acme&exact_match=1",
		"/api/v2/deals/search?term=acme&fields=email",
		"/api/v2/persons/search?term=acme&limit=501",
		"/api/v2/itemSearch?term=acme&item_types=car",
	} {
		r := search(p)
		wantAPIError(t, r, 400, r.json(t)["error"].(string))
		if r.json(t)["code"] != CodeSchemaValidation {
			t.Errorf("GET %s = %s, want code %s", p, r.body, CodeSchemaValidation)
		}
	}
	// One character is enough with exact_match.
	if r := search("/api/v2/deals/search?term=a&exact_match=true"); r.status != 200 {
		t.Errorf("one-character exact search = %d %s, want 200", r.status, r.body)
	}
}

// TestSearchScopesAndCompany: itemSearch needs search:read, the entity searches their
// entity's read scope, and no search reaches another company's data.
func TestSearchScopesAndCompany(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install().AccessToken
	s.created("POST", "/api/v2/deals", tok, map[string]any{"title": "Secret deal"})
	wantAPIError(t, s.api("GET", "/api/v2/itemSearch?term=secret", tok, nil), 403, MsgScopeMismatch)
	if got, _ := searchItems(t, s.api("GET", "/api/v2/deals/search?term=secret", tok, nil)); len(got) != 1 {
		t.Errorf("deals search with deals:full = %v, want the deal", got)
	}

	if err := s.AddUser(User{ID: 77, CompanyID: 88, Scopes: []string{"deals:read", "search:read"}}); err != nil {
		t.Fatal(err)
	}
	other, err := s.IssueToken(77)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/api/v2/deals/search?term=secret", "/api/v2/itemSearch?term=secret"} {
		if got, _ := searchItems(t, s.api("GET", p, other.AccessToken, nil)); len(got) != 0 {
			t.Errorf("GET %s from another company = %v, want nothing", p, got)
		}
	}
	wantAPIError(t, s.api("GET", "/api/v2/persons/search?term=secret", other.AccessToken, nil), 403, MsgScopeMismatch)
}

// TestSearchWindowAndCost: every search endpoint counts against the search burst window (its
// own, of 10) and costs a v2 search's 20 tokens of the daily budget.
func TestSearchWindowAndCost(t *testing.T) {
	s := newSim(t, Config{DailyBudget: 1000, Scopes: []string{"base", "deals:full", "contacts:full", "search:read"}})
	tok := s.install().AccessToken
	paths := []string{"/api/v2/deals/search?term=xy", "/api/v2/persons/search?term=xy", "/api/v2/organizations/search?term=xy", "/api/v2/itemSearch?term=xy"}
	left := 1000
	for i := range 10 {
		p := paths[i%len(paths)]
		r := s.api("GET", p, tok, nil)
		left -= 20
		if r.status != 200 || r.header.Get("x-ratelimit-limit") != "10" || r.header.Get("x-ratelimit-remaining") != strconv.Itoa(9-i) {
			t.Fatalf("search %d (%s) = %d limit %q remaining %q, want 200, 10, %d", i, p, r.status, r.header.Get("x-ratelimit-limit"), r.header.Get("x-ratelimit-remaining"), 9-i)
		}
		if got := r.header.Get("x-daily-ratelimit-token-remaining"); got != strconv.Itoa(left) {
			t.Fatalf("search %d budget left = %s, want %d (20 tokens a v2 search)", i, got, left)
		}
	}
	wantAPIError(t, s.api("GET", "/api/v2/itemSearch?term=xy", tok, nil), 429, MsgRequestOverLimit)
	// The general window is untouched by searches.
	if r := s.api("GET", "/api/v2/deals", tok, nil); r.status != 200 || r.header.Get("x-ratelimit-remaining") != strconv.Itoa(DefaultRateLimit-1) {
		t.Errorf("GET /api/v2/deals after 10 searches = %d remaining %q, want 200, %d", r.status, r.header.Get("x-ratelimit-remaining"), DefaultRateLimit-1)
	}
	if c := s.Counters().APIByRoute; c["GET /api/v2/itemSearch"] != 3 || c["GET /api/v2/deals/search"] != 3 {
		t.Errorf("api_by_route = %v, want the search routes counted", c)
	}
}
