package tokenstore_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

const (
	secretAccess  = "v1u:SECRET-ACCESS-TOKEN"
	secretRefresh = "1:1:SECRET-REFRESH-TOKEN"
)

var secretInstallation = tokenstore.Installation{
	ID:           acme,
	AccessToken:  secretAccess,
	RefreshToken: secretRefresh,
	APIDomain:    "https://acme.pipedrive.com",
	Scopes:       []string{"base"},
	ExpiresAt:    t0.Add(time.Hour),
	Status:       tokenstore.StatusActive,
	Version:      4,
	LeaseOwner:   "refresher-1",
}

var secretTokens = tokenstore.Tokens{AccessToken: secretAccess, RefreshToken: secretRefresh, APIDomain: "https://acme.pipedrive.com", ExpiresAt: t0}

func assertNoSecret(t *testing.T, what, out string) {
	t.Helper()
	if strings.Contains(out, "SECRET") {
		t.Errorf("%s reveals a token: %s", what, out)
	}
}

func TestInstallationLogsWithoutTokens(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("refreshed", "installation", secretInstallation, "pointer", &secretInstallation, "tokens", secretTokens)
	out := buf.String()
	assertNoSecret(t, "slog JSON line", out)

	var line struct {
		Installation map[string]any `json:"installation"`
		Tokens       map[string]any `json:"tokens"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q is not JSON: %v", out, err)
	}
	want := map[string]any{
		"company_id": float64(3408256), "user_id": float64(5206648), "status": "active", "version": float64(4),
		"expires_at": "2026-03-02T10:00:00Z", "api_domain": "https://acme.pipedrive.com",
	}
	for k, v := range want {
		if line.Installation[k] != v {
			t.Errorf("logged installation[%s] = %v, want %v", k, line.Installation[k], v)
		}
	}
	if len(line.Installation) != len(want) {
		t.Errorf("logged installation has fields %v, want exactly %d", line.Installation, len(want))
	}
	if line.Tokens["new_refresh_token"] != true {
		t.Errorf("logged tokens = %v, want new_refresh_token true", line.Tokens)
	}
}

func TestInstallationFormatsWithoutTokens(t *testing.T) {
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%10.3v"} {
		for name, arg := range map[string]any{
			"installation":          secretInstallation,
			"pointer":               &secretInstallation,
			"slice":                 []tokenstore.Installation{secretInstallation},
			"exported field":        struct{ In tokenstore.Installation }{secretInstallation},
			"tokens":                secretTokens,
			"tokens pointer":        &secretTokens,
			"installation in a map": map[string]tokenstore.Installation{"a": secretInstallation},
		} {
			assertNoSecret(t, fmt.Sprintf("fmt %s of %s", verb, name), fmt.Sprintf(verb, arg))
		}
	}
	if got := fmt.Sprint(secretInstallation); !strings.Contains(got, "3408256:5206648") || !strings.Contains(got, "active") {
		t.Errorf("fmt.Sprint(installation) = %q, want the id and status", got)
	}
	for name, v := range map[string]any{"installation": secretInstallation, "tokens": secretTokens} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%s) = %v", name, err)
		}
		assertNoSecret(t, "json.Marshal of "+name, string(b))
	}
}
