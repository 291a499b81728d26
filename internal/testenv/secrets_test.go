package testenv

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

const (
	token = "access-token-4f1c9e"
	code  = "auth code+with/escapes"
)

func TestSecretsFoundIn(t *testing.T) {
	var s Secrets
	s.Add("access token", token)
	s.Add("authorization code", code)
	s.Add("short", "abc1234") // below MinSecretLen: ignored
	if got := s.Len(); got != 2 {
		t.Fatalf("Len() = %d, want 2 (the short value ignored)", got)
	}
	var states Secrets
	states.AddWhole("state", "At92vpeMpxgedoQosVfvoMcAAAAAawlwwCbOGENTH2Md")
	if got := states.FoundIn("another state gwa6oFxLku2giOIaewdqcAAAAAawlwwCKpO1iM"); len(got) != 0 {
		t.Errorf("FoundIn(a piece of a whole-only value) = %q, want nothing", got)
	}
	if got := states.FoundIn("Location: /cb?state=At92vpeMpxgedoQosVfvoMcAAAAAawlwwCbOGENTH2Md"); len(got) != 1 {
		t.Errorf("FoundIn(the whole value) = %q, want the state", got)
	}
	var withIDs Secrets
	withIDs.Add("refresh token", "3408256:5206648:Zk3b9QmW2xLr8TpV")
	if got := withIDs.FoundIn("uninstall 3408256:5206648 failed"); len(got) != 0 {
		t.Errorf("FoundIn(ids only) = %q, want nothing: the ids are public", got)
	}
	if got := withIDs.FoundIn("job register_webhooks:3408256:5206648:Zk dead-lettered"); len(got) != 0 {
		t.Errorf("FoundIn(ids and the token's first letters) = %q, want nothing", got)
	}
	if got := withIDs.FoundIn("token tail 5206648:Zk3b9QmW2xLr"); len(got) != 1 {
		t.Errorf("FoundIn(tail with the random part) = %q, want the refresh token", got)
	}
	var digitLed Secrets
	digitLed.Add("access token", "v1u:7Qk3b9QmW2xLr8TpVa2")
	if got := digitLed.FoundIn(`{"token":"v1u:7Qk3b9QmW2xL"}`); len(got) != 1 {
		t.Errorf("FoundIn(the first 16 characters of a token whose random part starts with a digit) = %q, want the access token", got)
	}
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"clean text", `{"msg":"refreshed","company_id":1,"note":"abc1234"}`, nil},
		{"a token as is", `{"token":"` + token + `"}`, []string{"access token (19 chars)"}},
		{"a code query-escaped", "GET /oauth/callback?code=" + url.QueryEscape(code), []string{"authorization code (22 chars)"}},
		{"both, sorted", token + " " + code, []string{"access token (19 chars)", "authorization code (22 chars)"}},
		{"a token in a Basic header", "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("client-id:"+token)), []string{"access token (19 chars)"}},
		{"a token base64url-encoded, unpadded", `{"blob":"` + base64.RawURLEncoding.EncodeToString([]byte("xx"+code+"yy")) + `"}`, []string{"authorization code (22 chars)"}},
		{"a token truncated to 12 characters", `{"token_prefix":"` + token[:12] + `…"}`, []string{"access token (19 chars)"}},
		{"a token's tail", `{"t":"…` + token[len(token)-12:] + `"}`, []string{"access token (19 chars)"}},
		{"a code JSON-escaped", `{"c":` + mustJSON(code) + `}`, []string{"authorization code (22 chars)"}},
		{"11 characters are not a leak", token[:11], nil},
		{"a refresh token's public id prefix is not a leak", "pdctl uninstall 3408256:5206648", nil},
		{"unrelated base64", "Basic " + base64.StdEncoding.EncodeToString([]byte("someone:something-else-entirely")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.FoundIn(tt.text)
			if !slices.Equal(got, tt.want) {
				t.Errorf("FoundIn(%s) = %q, want %q", tt.name, got, tt.want)
			}
			if strings.Contains(fmt.Sprint(got), token) || strings.Contains(fmt.Sprint(got), code) {
				t.Errorf("FoundIn(%s) = %q shows a secret", tt.name, got)
			}
		})
	}
}

func TestLeakReport(t *testing.T) {
	var some Secrets
	some.Add("refresh token", token)
	tests := []struct {
		name    string
		log     string
		secrets *Secrets
		want    string // substring of the report; "" for a pass
	}{
		{"clean log", `{"msg":"ok"}`, &some, ""},
		{"leaked token", `{"msg":"ok","t":"` + token + `"}`, &some, "contains 1 secret(s) seen during the tests: refresh token (19 chars)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := leakReport(tt.log, tt.secrets)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("leakReport(%s) = %q, want %q", tt.name, got, tt.want)
			}
			if strings.Contains(got, token) {
				t.Errorf("leakReport(%s) = %q shows the secret", tt.name, got)
			}
		})
	}
}

// logRecorder is a testing.TB whose Log is recorded.
type logRecorder struct {
	testing.TB
	lines []string
}

func (r *logRecorder) Log(args ...any) { r.lines = append(r.lines, fmt.Sprint(args...)) }

func TestTestLogWriter(t *testing.T) {
	r := &logRecorder{TB: t}
	w := TestLogWriter(r)
	p := []byte("{\"msg\":\"one\"}\n")
	if n, err := w.Write(p); n != len(p) || err != nil {
		t.Errorf("Write = %d, %v; want %d, nil", n, err, len(p))
	}
	if want := []string{`{"msg":"one"}`}; !slices.Equal(r.lines, want) {
		t.Errorf("logged %q, want %q", r.lines, want)
	}
}

func mustJSON(v string) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestRecordSecrets(t *testing.T) {
	oauth := http.NewServeMux()
	oauth.HandleFunc("GET /oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://app.example/oauth/callback?code=code-from-the-server-1&state=state-from-the-app-1", http.StatusFound)
	})
	oauth.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"v1u:access-from-the-server","refresh_token":"1:2:refresh-from-the-server","expires_in":3599}`)
	})
	var s Secrets
	srv := httptest.NewServer(RecordSecrets(&s, oauth))
	t.Cleanup(srv.Close)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, req := range []struct{ method, path string }{{"GET", "/oauth/authorize"}, {"POST", "/oauth/token"}} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if req.path == "/oauth/token" && !strings.Contains(string(body), "access-from-the-server") {
			t.Errorf("token answer through RecordSecrets = %q, want it passed on", body)
		}
	}
	got := s.FoundIn("code-from-the-server-1 v1u:access-from-the-server 1:2:refresh-from-the-server state-from-the-app-1")
	if want := []string{"access token (26 chars)", "authorization code (22 chars)", "refresh token (27 chars)", "state (20 chars)"}; !slices.Equal(got, want) {
		t.Errorf("secrets recorded = %q, want %q", got, want)
	}
}

func TestRecordingClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"v1u:access-from-the-server","refresh_token":"1:2:refresh-from-the-server"}`)
	}))
	t.Cleanup(srv.Close)
	var s Secrets
	c := RecordingClient(&s, srv.Client())
	r, _ := http.NewRequest("POST", srv.URL+"/oauth/token", nil)
	r.Header.Set("Authorization", "Bearer v1u:bearer-sent-by-the-client")
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "refresh-from-the-server") {
		t.Errorf("answer through RecordingClient = %q, want it passed on", body)
	}
	if got := s.Len(); got != 3 {
		t.Errorf("RecordingClient recorded %d secrets, want 3 (the bearer token and both tokens of the answer)", got)
	}
}
