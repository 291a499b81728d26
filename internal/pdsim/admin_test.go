package pdsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// admin calls the admin API with a JSON body (raw string, "" for none).
func (s *sim) admin(method, path, body string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(s.t, req)
}

// wantStatus fails unless r has status want.
func wantStatus(t *testing.T, what string, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s = %d (%s), want %d", what, r.status, r.body, want)
	}
}

// TestAdminDisabled checks that /_sim/ does not exist unless enabled.
func TestAdminDisabled(t *testing.T) {
	s := newSim(t, Config{})
	for _, p := range []string{"/_sim/counters", "/_sim/faults", "/_sim"} {
		if r := s.admin("GET", p, ""); r.status != 404 {
			t.Errorf("GET %s with admin off = %d, want 404", p, r.status)
		}
	}
	if r := s.admin("POST", "/_sim/tokens", `{"user_id":5206648}`); r.status != 404 {
		t.Errorf("POST /_sim/tokens with admin off = %d, want 404", r.status)
	}
}

// TestAdminUsersAndAuthorize drives installations through the admin API.
func TestAdminUsersAndAuthorize(t *testing.T) {
	s := newSim(t, Config{AdminEnabled: true})
	wantStatus(t, "add user", s.admin("POST", "/_sim/users", `{"id":7,"company_id":8,"company_domain":"seven","name":"Sev","email":"s@seven.example","scopes":["base"]}`), 201)
	wantStatus(t, "add bad user", s.admin("POST", "/_sim/users", `{"id":0}`), 400)
	wantStatus(t, "unknown field", s.admin("POST", "/_sim/users", `{"id":9,"company_id":1,"colour":"red"}`), 400)
	var users []User
	if err := json.Unmarshal(s.admin("GET", "/_sim/users", "").body, &users); err != nil || len(users) != 2 || users[0].ID != 7 {
		t.Fatalf("users = %+v (%v), want 2 ordered by id", users, err)
	}
	wantStatus(t, "acting unknown", s.admin("POST", "/_sim/acting-user", `{"user_id":99}`), 404)
	wantStatus(t, "acting 7", s.admin("POST", "/_sim/acting-user", `{"user_id":7}`), 204)

	params := url.Values{"client_id": {DefaultClientID}, "state": {"st"}}
	loc, _ := url.Parse(s.authorize(params, "").header.Get("Location"))
	tok := s.exchangeCode(loc.Query().Get("code"))
	if !strings.HasPrefix(tok.RefreshToken, "8:7:") || tok.Scope != "base" {
		t.Errorf("token = %+v, want user 7 of company 8 with scope base", tok)
	}

	for _, mode := range []struct {
		mode   string
		status int
	}{{"deny", 302}, {"maintenance", 503}, {"not_installable", 400}, {"approve", 302}} {
		wantStatus(t, "mode "+mode.mode, s.admin("POST", "/_sim/authorize-mode", `{"mode":"`+mode.mode+`"}`), 204)
		if r := s.authorize(params, ""); r.status != mode.status {
			t.Errorf("authorize in mode %s = %d, want %d", mode.mode, r.status, mode.status)
		}
	}
	wantStatus(t, "bad mode", s.admin("POST", "/_sim/authorize-mode", `{"mode":"maybe"}`), 400)
}

// TestAdminTokens checks codes, tokens, API tokens, expiry, revoke and the clock.
func TestAdminTokens(t *testing.T) {
	s := newSim(t, Config{AdminEnabled: true})
	var code struct{ Code string }
	r := s.admin("POST", "/_sim/codes", `{"user_id":5206648}`)
	wantStatus(t, "codes", r, 201)
	_ = json.Unmarshal(r.body, &code)
	s.exchangeCode(code.Code)
	wantStatus(t, "codes unknown", s.admin("POST", "/_sim/codes", `{"user_id":1}`), 404)

	// The clock endpoint ages codes.
	_ = json.Unmarshal(s.admin("POST", "/_sim/codes", `{}`).body, &code)
	r = s.admin("POST", "/_sim/clock/advance", `{"duration":"5m"}`)
	wantStatus(t, "advance", r, 200)
	if got := r.json(t)["now"]; got != t0.Add(5*time.Minute).Format(time.RFC3339Nano) {
		t.Errorf("clock now = %v, want t0+5m", got)
	}
	wantOAuthError(t, s.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code.Code}, "redirect_uri": {DefaultRedirectURI}}), 400, MsgAuthCodeExpired, ErrCodeInvalidGrant)
	wantStatus(t, "advance seconds", s.admin("POST", "/_sim/clock/advance", `{"seconds":1.5}`), 200)
	if got := s.Now(); !got.Equal(t0.Add(5*time.Minute + 1500*time.Millisecond)) {
		t.Errorf("Now() = %v, want t0+5m1.5s", got)
	}
	wantStatus(t, "advance nothing", s.admin("POST", "/_sim/clock/advance", `{}`), 400)

	var tok Token
	r = s.admin("POST", "/_sim/tokens", `{"user_id":5206648}`)
	wantStatus(t, "tokens", r, 201)
	_ = json.Unmarshal(r.body, &tok)
	if tok.APIDomain != s.URL {
		t.Errorf("api_domain = %q, want %q", tok.APIDomain, s.URL)
	}
	if r := s.api("GET", "/api/v1/users/me", tok.AccessToken, nil); r.status != 200 {
		t.Errorf("admin token on users/me = %d, want 200", r.status)
	}
	r = s.admin("POST", "/_sim/expire-access-tokens", `{"user_id":5206648}`)
	if r.status != 200 || r.json(t)["expired"] != float64(2) {
		t.Errorf("expire = %d %s, want 200 expired 2 (code exchange and admin token)", r.status, r.body)
	}
	wantAPIError(t, s.api("GET", "/api/v1/users/me", tok.AccessToken, nil), 401, MsgAccessTokenInvalid)
	tok = s.refreshToken(tok.RefreshToken)
	r = s.admin("POST", "/_sim/revoke-user", `{"user_id":5206648}`)
	if r.status != 200 || r.json(t)["revoked"] == float64(0) {
		t.Errorf("revoke-user = %d %s, want 200 with a count", r.status, r.body)
	}
	wantAPIError(t, s.api("GET", "/api/v1/users/me", tok.AccessToken, nil), 401, MsgAccessTokenInvalid)

	var apiTok struct {
		APIToken string `json:"api_token"`
	}
	_ = json.Unmarshal(s.admin("POST", "/_sim/api-tokens", `{"user_id":5206648}`).body, &apiTok)
	s.token(s.postForm("/oauth/token", url.Values{"grant_type": {"exchange_api_token"}, "api_token": {apiTok.APIToken}}))
}

// TestAdminFaults drives fault injection through HTTP.
func TestAdminFaults(t *testing.T) {
	s := newSim(t, Config{AdminEnabled: true})
	tok := s.install().AccessToken
	r := s.admin("POST", "/_sim/faults", `{"method":"GET","path":"/api/*","status":503,"times":2,"latency":"10ms","header":{"Retry-After":["3"]}}`)
	wantStatus(t, "inject", r, 201)
	id := r.json(t)["id"].(string)
	var listed []InjectedFault
	if err := json.Unmarshal(s.admin("GET", "/_sim/faults", "").body, &listed); err != nil || len(listed) != 1 || listed[0].Fault.Latency != 10*time.Millisecond || listed[0].Fault.Status != 503 {
		t.Fatalf("faults = %+v (%v), want the injected one with 10ms latency", listed, err)
	}
	r = s.api("GET", "/api/v2/deals", tok, nil)
	wantAPIError(t, r, 503, "Service Unavailable")
	if r.header.Get("Retry-After") != "3" {
		t.Errorf("Retry-After = %q, want 3", r.header.Get("Retry-After"))
	}
	wantStatus(t, "remove", s.admin("DELETE", "/_sim/faults/"+id, ""), 204)
	wantStatus(t, "remove again", s.admin("DELETE", "/_sim/faults/"+id, ""), 404)
	if r := s.api("GET", "/api/v2/deals", tok, nil); r.status != 200 {
		t.Errorf("after removal = %d, want 200", r.status)
	}
	wantStatus(t, "invalid fault", s.admin("POST", "/_sim/faults", `{"status":9999}`), 400)
	wantStatus(t, "bad latency", s.admin("POST", "/_sim/faults", `{"latency":"soon"}`), 400)
	wantStatus(t, "inject drop", s.admin("POST", "/_sim/faults", `{"drop":true}`), 201)
	wantStatus(t, "clear", s.admin("DELETE", "/_sim/faults", ""), 204)
	if r := s.api("GET", "/api/v2/deals", tok, nil); r.status != 200 {
		t.Errorf("after clear = %d, want 200", r.status)
	}
	wantStatus(t, "release", s.admin("POST", "/_sim/release-hung", ""), 204)
	wantStatus(t, "gone", s.admin("POST", "/_sim/gone", `{"path":"/api/v1/legacy"}`), 204)
	wantAPIError(t, s.api("GET", "/api/v1/legacy", tok, nil), 410, MsgGone)
	wantStatus(t, "unknown endpoint", s.admin("GET", "/_sim/nothing", ""), 404)
}

// TestAdminCountersUninstallWebhooks checks counters, uninstall and webhook listing over HTTP.
func TestAdminCountersUninstallWebhooks(t *testing.T) {
	s := newSim(t, Config{AdminEnabled: true})
	tok := s.install().AccessToken
	s.api("POST", "/api/v1/webhooks", tok, hookBody("h"))
	r := s.admin("GET", "/_sim/webhooks?user_id=5206648", "")
	var hooks []map[string]any
	if err := json.Unmarshal(r.body, &hooks); err != nil || len(hooks) != 1 || hooks[0]["name"] != "h" {
		t.Errorf("webhooks = %s (%v), want one named h", r.body, err)
	}
	wantStatus(t, "webhooks without user", s.admin("GET", "/_sim/webhooks", ""), 400)

	var c Counters
	if err := json.Unmarshal(s.admin("GET", "/_sim/counters", "").body, &c); err != nil {
		t.Fatal(err)
	}
	if c.TokenByGrant["authorization_code"] != 1 || c.APIByRoute["POST /api/v1/webhooks"] != 1 || c.APIByStatus[201] != 1 {
		t.Errorf("counters = %+v, want one code exchange and one webhook POST", c)
	}

	cb, got := newReceiver(t, 200)
	body, _ := json.Marshal(map[string]any{"callback_url": cb, "user_id": DefaultUserID, "string_ids": true, "client_secret": "nope"})
	r = s.admin("POST", "/_sim/uninstall", string(body))
	if r.status != 200 || r.json(t)["status"] != float64(200) {
		t.Fatalf("uninstall = %d %s, want 200 status 200", r.status, r.body)
	}
	rec := <-got
	if rec.pass != "nope" || rec.user != DefaultClientID || rec.body["user_id"] != "5206648" {
		t.Errorf("uninstall request = %+v, want secret nope and string ids", rec)
	}
	wantStatus(t, "uninstall without url", s.admin("POST", "/_sim/uninstall", `{"user_id":5206648}`), 400)
	wantStatus(t, "uninstall unknown user", s.admin("POST", "/_sim/uninstall", `{"user_id":1,"callback_url":"`+cb+`"}`), 404)

	wantStatus(t, "reset", s.admin("DELETE", "/_sim/counters", ""), 204)
	if c := s.Counters(); len(c.APIByRoute) != 0 || c.Uninstalls != 0 {
		t.Errorf("after reset = %+v, want zero", c)
	}
}

// TestAPIDomain checks the base URL derived from Host, and SetAPIDomain.
func TestAPIDomain(t *testing.T) {
	s := New(Config{AdminEnabled: true})
	hs := httptest.NewServer(s)
	defer hs.Close()
	second := httptest.NewServer(s) // the same simulator under another host
	defer second.Close()

	post := func(u, body string) response {
		req, _ := http.NewRequest("POST", u, bytes.NewBufferString(body))
		req.Header.Set("Content-Type", "application/json")
		return do(t, req)
	}
	var tok Token
	_ = json.Unmarshal(post(hs.URL+"/_sim/tokens", `{"user_id":5206648}`).body, &tok)
	if tok.APIDomain != hs.URL {
		t.Errorf("derived api_domain = %q, want %q", tok.APIDomain, hs.URL)
	}
	wantStatus(t, "api-domain", post(hs.URL+"/_sim/api-domain", `{"company_id":3408256,"api_domain":"`+second.URL+`"}`), 204)
	_ = json.Unmarshal(post(hs.URL+"/_sim/tokens", `{"user_id":5206648}`).body, &tok)
	if tok.APIDomain != second.URL {
		t.Errorf("api_domain after change = %q, want %q", tok.APIDomain, second.URL)
	}
	do(t, bearerRequest(t, tok.APIDomain+"/api/v1/users/me", tok.AccessToken))
	if got := s.Counters().APIByHost[strings.TrimPrefix(second.URL, "http://")]; got != 1 {
		t.Errorf("calls to the new api_domain = %d, want 1", got)
	}
	s.SetBaseURL("https://fixed.example/")
	if s.BaseURL() != "https://fixed.example" {
		t.Errorf("BaseURL() = %q, want trailing slash trimmed", s.BaseURL())
	}
	s.SetAPIDomain(DefaultCompanyID, "")
	if tok, err := s.IssueToken(DefaultUserID); err != nil || tok.APIDomain != "https://fixed.example" {
		t.Errorf("IssueToken api_domain = %q (%v), want the base URL", tok.APIDomain, err)
	}
}
