package pdsim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// received is one request the fake app callback got.
type received struct {
	method      string
	user, pass  string
	hasAuth     bool
	contentType string
	body        map[string]any
}

// newReceiver starts an app callback that records requests and answers status.
func newReceiver(t *testing.T, status int) (string, <-chan received) {
	t.Helper()
	ch := make(chan received, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec received
		rec.method = r.Method
		rec.user, rec.pass, rec.hasAuth = r.BasicAuth()
		rec.contentType = r.Header.Get("Content-Type")
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &rec.body)
		ch <- rec
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/callback", ch
}

// TestUninstall checks the request Pipedrive sends and that the user's tokens die.
func TestUninstall(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install()
	if r := s.api("POST", "/api/v1/webhooks", tok.AccessToken, hookBody("h")); r.status != 201 {
		t.Fatalf("create webhook = %d", r.status)
	}
	cb, got := newReceiver(t, http.StatusNoContent)

	status, err := s.Uninstall(context.Background(), cb, DefaultUserID)
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("Uninstall = %d, %v; want 204, nil", status, err)
	}
	rec := <-got
	if rec.method != http.MethodDelete || !rec.hasAuth || rec.user != DefaultClientID || rec.pass != DefaultClientSecret || rec.contentType != "application/json" {
		t.Errorf("request = %+v, want DELETE, JSON, Basic %s:%s", rec, DefaultClientID, DefaultClientSecret)
	}
	if rec.body["client_id"] != DefaultClientID || rec.body["company_id"] != float64(DefaultCompanyID) || rec.body["user_id"] != float64(DefaultUserID) {
		t.Errorf("body = %v, want client_id and numeric ids", rec.body)
	}
	if ts, _ := rec.body["timestamp"].(string); ts != t0.Format(time.RFC3339) {
		t.Errorf("timestamp = %v, want %s", rec.body["timestamp"], t0.Format(time.RFC3339))
	}
	wantAPIError(t, s.api("GET", "/api/v1/users/me", tok.AccessToken, nil), 401, MsgAccessTokenInvalid)
	wantOAuthError(t, s.postForm("/oauth/token", formOf("grant_type", "refresh_token", "refresh_token", tok.RefreshToken)), 400, MsgRefreshTokenInvalid, ErrCodeInvalidGrant)
	if n := len(s.Webhooks(DefaultUserID)); n != 0 {
		t.Errorf("webhooks after uninstall = %d, want 0", n)
	}
	if c := s.Counters(); c.Uninstalls != 1 {
		t.Errorf("Uninstalls = %d, want 1", c.Uninstalls)
	}
}

// TestUninstallOptions checks the variants for testing the receiving side.
func TestUninstallOptions(t *testing.T) {
	s := newSim(t, Config{})
	tests := []struct {
		name  string
		opts  []UninstallOption
		check func(t *testing.T, rec received)
	}{
		{"string ids", []UninstallOption{WithStringIDs()}, func(t *testing.T, rec received) {
			if rec.body["company_id"] != strconv.FormatInt(DefaultCompanyID, 10) || rec.body["user_id"] != strconv.FormatInt(DefaultUserID, 10) {
				t.Errorf("ids = %v / %v, want strings", rec.body["company_id"], rec.body["user_id"])
			}
		}},
		{"epoch timestamp", []UninstallOption{WithEpochTimestamp()}, func(t *testing.T, rec received) {
			if rec.body["timestamp"] != float64(t0.Unix()) {
				t.Errorf("timestamp = %v, want %d", rec.body["timestamp"], t0.Unix())
			}
		}},
		{"wrong credentials", []UninstallOption{WithCredentials("id", "bad")}, func(t *testing.T, rec received) {
			if rec.user != "id" || rec.pass != "bad" || rec.body["client_id"] != "id" {
				t.Errorf("credentials = %s:%s, client_id %v; want id:bad", rec.user, rec.pass, rec.body["client_id"])
			}
		}},
		{"no credentials", []UninstallOption{WithoutCredentials()}, func(t *testing.T, rec received) {
			if rec.hasAuth {
				t.Errorf("Authorization present, want none")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb, got := newReceiver(t, http.StatusUnauthorized)
			status, err := s.Uninstall(context.Background(), cb, DefaultUserID, tt.opts...)
			if err != nil || status != http.StatusUnauthorized {
				t.Fatalf("Uninstall = %d, %v; want the receiver's 401", status, err)
			}
			tt.check(t, <-got)
		})
	}
}

// TestUninstallKeepTokens checks WithTokensKept.
func TestUninstallKeepTokens(t *testing.T) {
	s := newSim(t, Config{})
	tok := s.install()
	cb, got := newReceiver(t, 200)
	if _, err := s.Uninstall(context.Background(), cb, DefaultUserID, WithTokensKept()); err != nil {
		t.Fatal(err)
	}
	<-got
	if r := s.api("GET", "/api/v1/users/me", tok.AccessToken, nil); r.status != 200 {
		t.Errorf("token after kept-tokens uninstall = %d, want 200", r.status)
	}
}

// TestUninstallErrors checks an unknown user and an unreachable callback.
func TestUninstallErrors(t *testing.T) {
	s := newSim(t, Config{})
	if _, err := s.Uninstall(context.Background(), "http://127.0.0.1:1/cb", 12345); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("Uninstall(unknown user) error = %v, want ErrUnknownUser", err)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	if _, err := s.Uninstall(context.Background(), dead, DefaultUserID); err == nil {
		t.Errorf("Uninstall(closed server) error = nil, want a send error")
	}
}
