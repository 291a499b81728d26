package wire_test

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestTokensKey: a function never gets a store that would write tokens in clear; pdctl without
// the key describes installations but cannot refresh.
func TestTokensKey(t *testing.T) {
	base := map[string]string{"TOKENS_TABLE": "tokens", "CLIENT_SECRET_ID": "secret", "AWS_REGION": "us-east-1"}
	_, err := wire.Load(t.Context(), wire.Options{Name: "refresher", Getenv: env(base), SkipCredentialCheck: true, LogOutput: io.Discard})
	if !errors.Is(err, wire.ErrConfig) {
		t.Errorf("Load(function without TOKENS_KEY_ID) = %v, want ErrConfig", err)
	}

	withKey := map[string]string{"TOKENS_KEY_ID": "alias/tokens"}
	for k, v := range base {
		withKey[k] = v
	}
	app, err := wire.Load(t.Context(), wire.Options{Name: "refresher", Getenv: env(withKey), SkipCredentialCheck: true, LogOutput: io.Discard})
	if err != nil {
		t.Fatalf("Load(function with TOKENS_KEY_ID) = %v", err)
	}
	if app.Store.Cipher == nil || app.Tokens == nil || app.Tokens.KeyID != "alias/tokens" || app.Refresher("x") == nil {
		t.Errorf("Load(function with TOKENS_KEY_ID): store cipher %v, tokens %+v, want the key alias/tokens and a refresher", app.Store.Cipher, app.Tokens)
	}

	pdctl, err := wire.Load(t.Context(), wire.Options{Name: "pdctl", Getenv: env(base), Optional: true, SkipCredentialCheck: true, LogOutput: io.Discard})
	if err != nil {
		t.Fatalf("Load(pdctl without TOKENS_KEY_ID) = %v", err)
	}
	if pdctl.Store == nil || pdctl.Store.Cipher != nil || pdctl.Refresher("pdctl") != nil {
		t.Errorf("Load(pdctl without TOKENS_KEY_ID): store %v, cipher %v, want a store without cipher and no refresher", pdctl.Store, pdctl.Store.Cipher)
	}
}

// TestLogLevel: the logger follows AWS_LAMBDA_LOG_LEVEL (what Lambda sets from the template's
// LogLevel); INFO when unset; a value Lambda does not define is a configuration error.
func TestLogLevel(t *testing.T) {
	for _, tt := range []struct {
		level     string
		debug     bool
		info      bool
		wantError bool
	}{
		{"", false, true, false},
		{"INFO", false, true, false},
		{"DEBUG", true, true, false},
		{"TRACE", true, true, false},
		{"WARN", false, false, false},
		{"LOUD", false, false, true},
	} {
		vars := map[string]string{"AWS_REGION": "us-east-1", "AWS_LAMBDA_LOG_LEVEL": tt.level}
		app, err := wire.Load(t.Context(), wire.Options{Name: "pdctl", Getenv: env(vars), Optional: true, SkipCredentialCheck: true, LogOutput: io.Discard})
		if tt.wantError {
			if !errors.Is(err, wire.ErrConfig) {
				t.Errorf("Load(AWS_LAMBDA_LOG_LEVEL=%s) = %v, want ErrConfig", tt.level, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Load(AWS_LAMBDA_LOG_LEVEL=%s) = %v", tt.level, err)
		}
		ctx := t.Context()
		if d, i := app.Log.Enabled(ctx, slog.LevelDebug), app.Log.Enabled(ctx, slog.LevelInfo); d != tt.debug || i != tt.info {
			t.Errorf("AWS_LAMBDA_LOG_LEVEL=%q: debug %t, info %t; want %t, %t", tt.level, d, i, tt.debug, tt.info)
		}
	}
}

// TestOAuthURLMustBeHTTPS: a function refuses to start with an OAuth server URL that would send
// the client secret and the refresh tokens in clear; plain http only for a loopback simulator
// with the local flag.
func TestOAuthURLMustBeHTTPS(t *testing.T) {
	tests := []struct {
		name, url, loopback string
		ok                  bool
	}{
		{"Pipedrive", "https://oauth.pipedrive.com", "", true},
		{"http to Pipedrive", "http://oauth.pipedrive.com", "", false},
		{"http elsewhere, even with the local flag", "http://oauth.example", "true", false},
		{"http loopback without the local flag", "http://127.0.0.1:8080", "", false},
		{"http loopback with the local flag", "http://127.0.0.1:8080", "true", true},
		{"not a URL", "oauth.pipedrive.com", "", false},
		{"user info", "https://user:pass@oauth.pipedrive.com", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"TOKENS_TABLE": "tokens", "TOKENS_KEY_ID": "alias/tokens", "AWS_REGION": "us-east-1",
				"PIPEDRIVE_OAUTH_URL": tt.url, "PIPEDRIVE_ALLOW_LOOPBACK": tt.loopback}
			_, err := wire.Load(t.Context(), wire.Options{Name: "refresher", Getenv: env(vars), Optional: true, SkipCredentialCheck: true, LogOutput: io.Discard})
			if tt.ok && err != nil {
				t.Errorf("Load(%s) = %v, want it to start", tt.url, err)
			}
			if !tt.ok && (!errors.Is(err, wire.ErrConfig) || !strings.Contains(err.Error(), "PIPEDRIVE_OAUTH_URL")) {
				t.Errorf("Load(%s) = %v, want a configuration error naming PIPEDRIVE_OAUTH_URL", tt.url, err)
			}
		})
	}
}
