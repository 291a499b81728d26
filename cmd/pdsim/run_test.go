package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// TestParseOptions checks defaults, environment and flag precedence, and bad values.
func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(o options) bool
		wantErr bool
	}{
		{"defaults", nil, nil, func(o options) bool {
			return o.addr == "127.0.0.1:8787" && o.rotate && o.rateLimit == 80 && o.clientID == pdsim.DefaultClientID && o.accessTTL == 3599*time.Second
		}, false},
		{"environment", nil, map[string]string{"PDSIM_ADDR": ":9000", "PDSIM_ROTATE": "false", "PDSIM_RATE_LIMIT": "5", "PDSIM_CODE_TTL": "1m"}, func(o options) bool {
			return o.addr == ":9000" && !o.rotate && o.rateLimit == 5 && o.codeTTL == time.Minute
		}, false},
		{"flags beat environment", []string{"-rate-limit", "7", "-rotate=true", "-client-id", "cid"}, map[string]string{"PDSIM_RATE_LIMIT": "5", "PDSIM_ROTATE": "false"}, func(o options) bool {
			return o.rateLimit == 7 && o.rotate && o.clientID == "cid"
		}, false},
		{"secret from environment", nil, map[string]string{"PDSIM_CLIENT_SECRET": "env-secret"}, func(o options) bool {
			return o.clientSecret == "env-secret"
		}, false},
		{"secret flag beats environment", []string{"-client-secret", "flag-secret"}, map[string]string{"PDSIM_CLIENT_SECRET": "env-secret"}, func(o options) bool {
			return o.clientSecret == "flag-secret"
		}, false},
		{"default secret", nil, nil, func(o options) bool { return o.clientSecret == pdsim.DefaultClientSecret }, false},
		{"webhook defaults", nil, nil, func(o options) bool { return o.webhookTimeout == 10*time.Second && !o.webhookNumericIDs }, false},
		{"webhook environment", nil, map[string]string{"PDSIM_WEBHOOK_TIMEOUT": "2s", "PDSIM_WEBHOOK_NUMERIC_IDS": "true"}, func(o options) bool {
			return o.webhookTimeout == 2*time.Second && o.webhookNumericIDs
		}, false},
		{"bad webhook numeric ids", nil, map[string]string{"PDSIM_WEBHOOK_NUMERIC_IDS": "maybe"}, nil, true},
		{"bad env number", nil, map[string]string{"PDSIM_RATE_LIMIT": "lots"}, nil, true},
		{"bad env duration", nil, map[string]string{"PDSIM_ACCESS_TTL": "1 hour"}, nil, true},
		{"bad flag", []string{"-rate-limit", "x"}, nil, nil, true},
		{"zero rate limit", []string{"-rate-limit", "0"}, nil, nil, true},
		{"stray argument", []string{"serve"}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseOptions(%q) error = %v, want error %v", tt.args, err, tt.wantErr)
			}
			if tt.check != nil && !tt.check(o) {
				t.Errorf("parseOptions(%q) = %+v, not as expected", tt.args, o)
			}
		})
	}
	if got := splitList(" base, ,deals:full,"); strings.Join(got, "|") != "base|deals:full" {
		t.Errorf("splitList = %q, want [base deals:full]", got)
	}
}

// TestRun starts the command, runs an install against it, checks faults through its access
// log wrapper, and shuts it down with a request still hanging.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testenv.Buffer{}
	done := make(chan error, 1)
	env := map[string]string{"PDSIM_CLIENT_SECRET": "s3cret-value"}
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-rotate=false"}, func(k string) string { return env[k] }, out)
	}()

	base := ""
	deadline := time.Now().Add(5 * time.Second)
	for base == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line after 5s; output: %s", out.String())
		}
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["msg"] == "listening" {
				base, _ = ev["base_url"].(string)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	post := func(path, contentType, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if path == "/oauth/token" {
			req.SetBasicAuth(pdsim.DefaultClientID, "s3cret-value")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	status, b := post("/_sim/codes", "application/json", `{}`)
	var code struct{ Code string }
	if status != 201 || json.Unmarshal(b, &code) != nil {
		t.Fatalf("POST /_sim/codes = %d %s, want 201 with a code", status, b)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code.Code}, "redirect_uri": {pdsim.DefaultRedirectURI}}
	status, b = post("/oauth/token", "application/x-www-form-urlencoded", form.Encode())
	var tok pdsim.Token
	if status != 200 || json.Unmarshal(b, &tok) != nil || tok.APIDomain != base {
		t.Fatalf("token = %d %s, want 200 with api_domain %s", status, b, base)
	}
	req, _ := http.NewRequest("GET", tok.APIDomain+"/api/v1/users/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("users/me = %v, %v; want 200", resp, err)
	}
	resp.Body.Close()

	// Webhooks: the first delivery fails, the retry 3 s later (simulated) comes from the
	// binary's own retry loop.
	var hookMu sync.Mutex
	var hookAttempts []float64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Meta map[string]any }
		_ = json.NewDecoder(r.Body).Decode(&body)
		hookMu.Lock()
		defer hookMu.Unlock()
		attempt, _ := body.Meta["attempt"].(float64)
		hookAttempts = append(hookAttempts, attempt)
		if len(hookAttempts) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer receiver.Close()
	hookBody := `{"subscription_url":"` + receiver.URL + `","event_action":"create","event_object":"deal","name":"d","http_auth_user":"u","http_auth_password":"hook-pass-value"}`
	req, _ = http.NewRequest("POST", base+"/api/v1/webhooks", strings.NewReader(hookBody))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := client.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create webhook = %v, %v; want 201", resp, err)
	} else {
		resp.Body.Close()
	}
	if status, b := post("/_sim/user-actions", "application/json", `{"object":"deal","action":"create","fields":{"title":"T"}}`); status != 201 {
		t.Fatalf("user action = %d %s", status, b)
	}
	if status, b := post("/_sim/deliveries/wait", "application/json", `{}`); status != 204 {
		t.Fatalf("wait = %d %s", status, b)
	}
	if status, b := post("/_sim/clock/advance", "application/json", `{"seconds":3}`); status != 200 {
		t.Fatalf("advance = %d %s", status, b)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		hookMu.Lock()
		got := slices.Clone(hookAttempts)
		hookMu.Unlock()
		if len(got) == 2 {
			if got[0] != 1 || got[1] != 2 {
				t.Errorf("webhook attempts = %v, want [1 2]", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook attempts = %v after 5s, want the retry from the loop", got)
		}
	}

	// A dropped connection still works through the access-log wrapper (Hijack via Unwrap).
	if status, b := post("/_sim/faults", "application/json", `{"path":"/api/v2/deals","drop":true,"times":1}`); status != 201 {
		t.Fatalf("inject drop = %d %s", status, b)
	}
	req, _ = http.NewRequest("GET", base+"/api/v2/deals", nil)
	nokeep := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	if resp, err := nokeep.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("dropped call answered %d, want a connection error", resp.StatusCode)
	}

	// A request hanging at shutdown must not hold the process for the grace period.
	if status, b := post("/_sim/faults", "application/json", `{"path":"/api/v2/persons","hang":true}`); status != 201 {
		t.Fatalf("inject hang = %d %s", status, b)
	}
	hung := make(chan struct{})
	go func() {
		defer close(hung)
		req, _ := http.NewRequest("GET", base+"/api/v2/persons", nil)
		if resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("run did not return 10s after cancel")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v, want well under the %v grace", d, shutdownGrace)
	}
	<-hung

	logs := out.String()
	for name, secret := range map[string]string{"access token": tok.AccessToken, "refresh token": tok.RefreshToken, "code": code.Code, "client secret": "s3cret-value", "webhook password": "hook-pass-value"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the %s", name)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(logs))
	lines := 0
	for sc.Scan() {
		lines++
		if !json.Valid(sc.Bytes()) {
			t.Errorf("log line is not JSON: %s", sc.Text())
		}
	}
	if lines < 5 || !strings.Contains(logs, `"msg":"token issued"`) || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("logs = %s, want start, token issued, requests and stopped events", logs)
	}
}

// TestRunBadAddress checks that a listen failure is returned, not swallowed.
func TestRunBadAddress(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "256.0.0.1:1"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("run(bad addr) = %v, want a listen error", err)
	}
}

// TestRunHelp checks that -h prints usage and exits cleanly.
func TestRunHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &out); err != nil {
		t.Errorf("run(-h) = %v, want nil", err)
	}
	if !strings.Contains(out.String(), "-client-secret") {
		t.Errorf("run(-h) output = %q, want the flag list", out.String())
	}
}
