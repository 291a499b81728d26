package clientcreds_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/fakeclock"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

const (
	canaryWebhookKey  = "canary-webhook-key-NEVER-PRINT-0123456789abcdef"
	canaryWebhookKey2 = "canary-webhook-key-2-NEVER-PRINT-0123456789abc"
)

func keySource(t *testing.T, id string) (*clientcreds.WebhookKeySource, *counting, *fakeclock.Clock) {
	t.Helper()
	clk := fakeclock.New(t0)
	cnt := &counting{SecretsManager: sm(t)}
	return &clientcreds.WebhookKeySource{Client: cnt, SecretID: id, Now: clk.Now,
		Logger: slog.New(slog.NewJSONHandler(&runLog, nil))}, cnt, clk
}

func TestParseWebhookKeys(t *testing.T) {
	until := "2026-12-10T09:00:00Z"
	tests := []struct {
		name    string
		value   string
		want    webhook.Keys
		problem string // in the error; "" for a valid value
	}{
		{"generated at deploy", `{"key":"` + canaryWebhookKey + `"}`, webhook.Keys{Current: []byte(canaryWebhookKey)}, ""},
		{"after a rotation", `{"key":"` + canaryWebhookKey2 + `","previous_key":"` + canaryWebhookKey + `","previous_until":"` + until + `"}`,
			webhook.Keys{Current: []byte(canaryWebhookKey2), Previous: []byte(canaryWebhookKey), PreviousUntil: time.Date(2026, 12, 10, 9, 0, 0, 0, time.UTC)}, ""},
		{"not JSON", canaryWebhookKey, webhook.Keys{}, "is not a JSON object"},
		{"truncated", `{"key":"` + canaryWebhookKey, webhook.Keys{}, "is not valid JSON"},
		{"key a number", `{"key":12}`, webhook.Keys{}, `field "key" is a JSON number`},
		{"no key", `{}`, webhook.Keys{}, "key is 0 bytes"},
		{"short key", `{"key":"short"}`, webhook.Keys{}, "key is 5 bytes"},
		{"previous without until", `{"key":"` + canaryWebhookKey2 + `","previous_key":"` + canaryWebhookKey + `"}`, webhook.Keys{}, "go together"},
		{"until without previous", `{"key":"` + canaryWebhookKey2 + `","previous_until":"` + until + `"}`, webhook.Keys{}, "go together"},
		{"bad until", `{"key":"` + canaryWebhookKey2 + `","previous_key":"` + canaryWebhookKey + `","previous_until":"tomorrow"}`, webhook.Keys{}, "RFC 3339"},
		{"short previous", `{"key":"` + canaryWebhookKey2 + `","previous_key":"short","previous_until":"` + until + `"}`, webhook.Keys{}, "previous_key is 5 bytes"},
		{"previous is current", `{"key":"` + canaryWebhookKey + `","previous_key":"` + canaryWebhookKey + `","previous_until":"` + until + `"}`, webhook.Keys{}, "is the current key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clientcreds.ParseWebhookKeys(tt.value)
			if tt.problem == "" {
				if err != nil || got.String() != tt.want.String() || string(got.Current) != string(tt.want.Current) || string(got.Previous) != string(tt.want.Previous) {
					t.Errorf("ParseWebhookKeys = %v, %v; want %v", got, err, tt.want)
				}
				if back, err := clientcreds.ParseWebhookKeys(clientcreds.FormatWebhookKeys(got)); err != nil || back.String() != got.String() {
					t.Errorf("ParseWebhookKeys(FormatWebhookKeys(k)) = %v, %v; want %v", back, err, got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("ParseWebhookKeys error = %v, want one saying %q", err, tt.problem)
			}
			if err != nil && (strings.Contains(err.Error(), "canary") || strings.Contains(err.Error(), "short")) {
				t.Errorf("error quotes the value: %v", err)
			}
		})
	}
}

// TestWebhookKeySource reads the secret from Secrets Manager (moto): cached for TTL, Refresh
// fetches again (a rotation) but at most once per minAge, and a bad value is ErrInvalidSecret.
func TestWebhookKeySource(t *testing.T) {
	id := createSecret(t, `{"key":"`+canaryWebhookKey+`"}`)
	src, cnt, clk := keySource(t, id)
	ctx := context.Background()
	k, err := src.Load(ctx)
	if err != nil || string(k.Current) != canaryWebhookKey || len(k.Previous) != 0 {
		t.Fatalf("Load = %v, %v; want the generated key", k, err)
	}
	rotated := webhook.Keys{Current: []byte(canaryWebhookKey2), Previous: []byte(canaryWebhookKey), PreviousUntil: t0.Add(72 * time.Hour)}
	putSecret(t, id, clientcreds.FormatWebhookKeys(rotated))
	if k, _ := src.Get(ctx); string(k.Current) != canaryWebhookKey {
		t.Errorf("Get within TTL = %v, want the cached key", k)
	}
	clk.Advance(10 * time.Second)
	if k, _ := src.Refresh(ctx, 30*time.Second); string(k.Current) != canaryWebhookKey || cnt.calls.Load() != 1 {
		t.Errorf("Refresh 10 s after a fetch = %v after %d fetches, want the cached key and no fetch", k, cnt.calls.Load())
	}
	clk.Advance(30 * time.Second)
	if k, err := src.Refresh(ctx, 30*time.Second); err != nil || k.String() != rotated.String() || cnt.calls.Load() != 2 {
		t.Errorf("Refresh 40 s after a fetch = %v, %v after %d fetches; want the rotated keys, 2 fetches", k, err, cnt.calls.Load())
	}
	putSecret(t, id, `{"key":"short"}`)
	if _, err := src.Load(ctx); !errors.Is(err, clientcreds.ErrInvalidSecret) || strings.Contains(err.Error(), "short\"") {
		t.Errorf("Load of a short key = %v, want ErrInvalidSecret without the value", err)
	}
	if _, err := (&clientcreds.WebhookKeySource{Client: sm(t), SecretID: id + "-missing"}).Load(ctx); !errors.Is(err, clientcreds.ErrSecretNotFound) {
		t.Errorf("Load of a missing secret = %v, want ErrSecretNotFound", err)
	}
}
