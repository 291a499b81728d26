package clientcreds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// The webhook key secret (WEBHOOK_KEY_SECRET_ID, the template's WebhookKeySecret) is apart from
// the client secret, so the webhook receiver reads what it needs and nothing else: it can never
// read the client secret or the state key. Its value is the JSON object
//
//	{"key": "<current key>", "previous_key": "<the key before>", "previous_until": "<RFC 3339>"}
//
// where the previous key and its end of grace appear only after a rotation (`pdctl webhooks
// rotate-key` writes them). The deploy generates "key" (64 random characters).

// WebhookKeySource reads and caches the webhook key secret, exactly as Source does the client
// secret (TTL, Grace, RetryInterval, FetchTimeout; same defaults). Safe for concurrent use; do
// not copy it after first use.
type WebhookKeySource struct {
	// Client reads the secret.
	Client SecretsManager
	// SecretID is the secret's name or ARN (WEBHOOK_KEY_SECRET_ID).
	SecretID      string
	TTL           time.Duration
	Grace         time.Duration
	RetryInterval time.Duration
	FetchTimeout  time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives refresh warnings; slog.Default() when nil.
	Logger *slog.Logger

	c cache[webhook.Keys]
}

func (s *WebhookKeySource) settings() settings {
	return settings{s.Client, s.SecretID, s.TTL, s.Grace, s.RetryInterval, s.FetchTimeout, s.Now, s.Logger}
}

// Load fetches and validates the secret now, ignoring the cache (cold start, and whoever must
// use the newest key: register_webhooks right after a rotation). Errors wrap ErrSecretNotFound
// or ErrInvalidSecret when the operator must fix the secret.
func (s *WebhookKeySource) Load(ctx context.Context) (webhook.Keys, error) {
	return s.c.fetch(ctx, s.settings(), s.read)
}

// Get returns the cached keys, fetching them when older than TTL, with Source.Get's fallback to
// the last good value while a refresh fails.
func (s *WebhookKeySource) Get(ctx context.Context) (webhook.Keys, error) {
	return s.c.get(ctx, s.settings(), s.read, func(k webhook.Keys) string { return webhook.KeyID(k.Current) })
}

// Refresh fetches the keys again unless a fetch started within minAge, then returns Get's
// value. The receiver calls it when a delivery names a key it does not know (a rotation it has
// not seen yet); minAge keeps a flood of made-up key ids from becoming a flood of fetches.
func (s *WebhookKeySource) Refresh(ctx context.Context, minAge time.Duration) (webhook.Keys, error) {
	st := s.settings()
	if !s.c.fetchedWithin(st.clock(), minAge) {
		s.c.invalidate()
	}
	return s.Get(ctx)
}

func (s *WebhookKeySource) read(ctx context.Context) (webhook.Keys, error) {
	value, _, err := getSecretString(ctx, s.Client, s.SecretID)
	if err != nil {
		return webhook.Keys{}, err
	}
	k, problem := ParseWebhookKeys(value)
	if problem != nil {
		return webhook.Keys{}, invalid(s.SecretID, problem.Error())
	}
	return k, nil
}

// webhookKeysJSON is the secret's value.
type webhookKeysJSON struct {
	Key           string `json:"key"`
	PreviousKey   string `json:"previous_key,omitempty"`
	PreviousUntil string `json:"previous_until,omitempty"`
}

// ParseWebhookKeys reads the webhook key secret's value. The error says what is wrong without
// quoting the value: not a JSON object, a key shorter than webhook.MinKeyLen, a previous key
// without a valid previous_until (or the reverse), or a previous key equal to the current one.
func ParseWebhookKeys(value string) (webhook.Keys, error) {
	var raw webhookKeysJSON
	value = strings.TrimSpace(value)
	if !strings.HasPrefix(value, "{") {
		return webhook.Keys{}, errors.New("is not a JSON object")
	}
	if err := json.Unmarshal([]byte(value), &raw); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return webhook.Keys{}, fmt.Errorf("field %q is a JSON %s, want a string", typ.Field, typ.Value)
		}
		return webhook.Keys{}, errors.New("is not valid JSON")
	}
	k := webhook.Keys{Current: []byte(raw.Key)}
	if len(k.Current) < webhook.MinKeyLen {
		return webhook.Keys{}, fmt.Errorf("key is %d bytes, want at least %d", len(k.Current), webhook.MinKeyLen)
	}
	switch {
	case raw.PreviousKey == "" && raw.PreviousUntil == "":
		return k, nil
	case raw.PreviousKey == "" || raw.PreviousUntil == "":
		return webhook.Keys{}, errors.New("previous_key and previous_until go together")
	case len(raw.PreviousKey) < webhook.MinKeyLen:
		return webhook.Keys{}, fmt.Errorf("previous_key is %d bytes, want at least %d", len(raw.PreviousKey), webhook.MinKeyLen)
	case raw.PreviousKey == raw.Key:
		return webhook.Keys{}, errors.New("previous_key is the current key")
	}
	until, err := time.Parse(time.RFC3339, raw.PreviousUntil)
	if err != nil {
		return webhook.Keys{}, errors.New("previous_until is not an RFC 3339 time")
	}
	k.Previous, k.PreviousUntil = []byte(raw.PreviousKey), until
	return k, nil
}

// FormatWebhookKeys is the secret's value for k, as ParseWebhookKeys reads it back.
func FormatWebhookKeys(k webhook.Keys) string {
	raw := webhookKeysJSON{Key: string(k.Current)}
	if len(k.Previous) > 0 {
		raw.PreviousKey, raw.PreviousUntil = string(k.Previous), k.PreviousUntil.UTC().Format(time.RFC3339)
	}
	b, _ := json.Marshal(raw) // strings only: cannot fail
	return string(b)
}
