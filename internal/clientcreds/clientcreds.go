// Package clientcreds reads the app's client credentials and OAuth state key from the Secrets
// Manager secret named by CLIENT_SECRET_ID, whose value is the JSON object
// {"client_id","client_secret","state_key"} plus, optionally, "webhook_user" and
// "webhook_password" (the HTTP Basic pair of webhook deliveries; derived from state_key when
// absent).
//
// A Source caches the value for TTL (default 5 minutes), so a rotated secret is picked up by
// running functions without a redeploy. Concurrent callers share one fetch. When a refresh
// fails after a value was loaded — Secrets Manager unreachable, the secret deleted, or a new
// value that does not validate — the Source keeps serving the last good value for Grace
// (default 1 hour), logs a warning for each failed refresh, and retries at most every
// RetryInterval; after Grace, Get returns the error. Load, for startup, never falls back.
//
// Errors say what is wrong (secret ID, field, problem) and never contain the secret's value.
// Credentials print and log without their secret parts.
package clientcreds

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"golang.org/x/sync/singleflight"

	"github.com/pdkit/pipedrive-lambda-kit/internal/oauthstate"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// Defaults for zero Source fields.
const (
	// DefaultTTL is how long a fetched value is used before it is fetched again.
	DefaultTTL = 5 * time.Minute
	// DefaultGrace is how long the last good value is served while refreshes fail.
	DefaultGrace = time.Hour
	// DefaultRetryInterval spaces refresh attempts while they fail (never more than TTL), so an
	// outage does not add a Secrets Manager timeout to every request.
	DefaultRetryInterval = 30 * time.Second
	// DefaultFetchTimeout bounds one GetSecretValue call.
	DefaultFetchTimeout = 5 * time.Second
)

// MinStateKeyLen is the shortest state_key accepted, the same floor oauthstate enforces.
const MinStateKeyLen = oauthstate.MinKeyLen

// MinWebhookPasswordLen is the shortest webhook_password accepted from the secret.
const MinWebhookPasswordLen = 16

// Placeholder is the value the template deploys for client_id and client_secret until an
// operator sets them; it is rejected.
const Placeholder = "REPLACE_ME"

// Sentinel errors; the returned errors wrap one of them with the secret ID and the problem.
var (
	// ErrSecretNotFound: Secrets Manager has no secret with that ID (or no current value).
	ErrSecretNotFound = errors.New("clientcreds: secret not found")
	// ErrInvalidSecret: the value is not the expected JSON, a field is empty or still the
	// placeholder, or the state key is too short.
	ErrInvalidSecret = errors.New("clientcreds: invalid secret")
	// ErrNotConfigured: client_id or client_secret is still the Placeholder the stack deploys,
	// i.e. nobody has set them yet (a first deploy). Such errors also match ErrInvalidSecret.
	// It is a state to report plainly ("not configured"), not a failure to alert on.
	ErrNotConfigured = errors.New("clientcreds: client credentials not configured")
)

// placeholderProblem is how parse reports a field still holding the Placeholder.
const placeholderProblem = " is still the " + Placeholder + " placeholder: "

// SetupHint says how an operator configures the credentials; part of ErrNotConfigured errors.
const SetupHint = "set the Developer Hub client id and secret with `pdctl setup` (or in the Secrets Manager console)"

// SecretsManager is the one call the Source needs; *secretsmanager.Client implements it.
type SecretsManager interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Credentials are the validated contents of the secret. String, GoString and LogValue never
// show ClientSecret or StateKey (nor ClientID, so logs can be searched for it as a canary).
type Credentials struct {
	// ClientID and ClientSecret are the Pipedrive app's OAuth client credentials.
	ClientID, ClientSecret string
	// StateKey signs OAuth state values (oauthstate.Signer.Key); at least MinStateKeyLen bytes.
	StateKey []byte
	// Webhook is the HTTP Basic pair Pipedrive sends with webhook deliveries: the secret's
	// webhook_user/webhook_password when set, else derived from StateKey
	// (webhook.DeriveCredentials), so a deploy has a random one without template parameters.
	Webhook webhook.Credentials
	// VersionID is the Secrets Manager version the value came from; safe to log.
	VersionID string
}

// String describes c without its secrets.
func (c Credentials) String() string {
	return fmt.Sprintf("clientcreds.Credentials{version=%s client_id=%s client_secret=%s state_key=%d bytes}",
		c.VersionID, redacted(c.ClientID), redacted(c.ClientSecret), len(c.StateKey))
}

// GoString is String, so %#v does not print the secrets either.
func (c Credentials) GoString() string { return c.String() }

// LogValue implements slog.LogValuer: the version and the state key's length only.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("version", c.VersionID), slog.Int("state_key_bytes", len(c.StateKey)))
}

func redacted(s string) string {
	if s == "" {
		return "<empty>"
	}
	return "<redacted>"
}

// Source fetches and caches one secret. Client and SecretID are required; zero durations take
// the defaults above. A Source is safe for concurrent use; do not copy it after first use.
type Source struct {
	// Client reads the secret.
	Client SecretsManager
	// SecretID is the secret's name or ARN (CLIENT_SECRET_ID).
	SecretID string
	// TTL is how long a value is served before the next fetch.
	TTL time.Duration
	// Grace is how long the last good value is served while refreshes fail.
	Grace time.Duration
	// RetryInterval spaces refresh attempts while they fail (capped at TTL).
	RetryInterval time.Duration
	// FetchTimeout bounds one GetSecretValue call.
	FetchTimeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives refresh warnings; slog.Default() when nil.
	Logger *slog.Logger

	group singleflight.Group
	mu    sync.Mutex
	cur   Credentials
	ok    bool      // cur holds a good value
	okAt  time.Time // when cur was fetched
	next  time.Time // when the next fetch is due
}

// Load fetches and validates the secret now, ignoring the cache and the grace period, and
// caches the result. Call it at cold start and log.Fatal on error: the error wraps
// ErrSecretNotFound or ErrInvalidSecret when the operator must fix the secret.
func (s *Source) Load(ctx context.Context) (Credentials, error) {
	return s.fetch(ctx)
}

// Get returns the cached credentials, fetching them when the cache is empty or older than TTL.
// If that fetch fails while a good value younger than Grace is cached, Get logs a warning and
// returns the cached value with a nil error.
func (s *Source) Get(ctx context.Context) (Credentials, error) {
	now := s.now()
	s.mu.Lock()
	cur, ok, okAt, due := s.cur, s.ok, s.okAt, !now.Before(s.next)
	s.mu.Unlock()
	if ok && !due {
		return cur, nil
	}
	fresh, err := s.fetch(ctx)
	if err == nil {
		return fresh, nil
	}
	if !ok || now.Sub(okAt) > s.grace() || ctx.Err() != nil {
		return Credentials{}, err
	}
	s.mu.Lock()
	// Do not retry on every call while the outage lasts.
	if retry := now.Add(min(s.retryInterval(), s.ttl())); s.next.Before(retry) {
		s.next = retry
	}
	s.mu.Unlock()
	s.logger().WarnContext(ctx, "client secret refresh failed; serving the last good value",
		"action", "serve_stale", "secret_id", s.SecretID, "version", cur.VersionID,
		"age", now.Sub(okAt).Round(time.Second).String(), "grace", s.grace().String(), "error", err.Error())
	return cur, nil
}

// OAuthCredentials returns the client ID and secret from Get; it fits pdoauth.CredentialsFunc.
func (s *Source) OAuthCredentials(ctx context.Context) (clientID, clientSecret string, err error) {
	c, err := s.Get(ctx)
	if err != nil {
		return "", "", err
	}
	return c.ClientID, c.ClientSecret, nil
}

// Invalidate makes the next Get fetch the secret again, for example after Pipedrive answered
// "client is invalid" (the secret may just have been rotated). The cached value stays as the
// fallback for Grace.
func (s *Source) Invalidate() {
	s.mu.Lock()
	s.next = time.Time{}
	s.mu.Unlock()
}

// fetch reads and validates the secret, sharing one call among concurrent callers, and caches
// a good result. The shared call runs detached from any one caller's cancellation, bounded by
// FetchTimeout; each caller still stops waiting when its own ctx ends.
func (s *Source) fetch(ctx context.Context) (Credentials, error) {
	ch := s.group.DoChan("fetch", func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.fetchTimeout())
		defer cancel()
		c, err := s.read(fctx)
		if err != nil {
			return Credentials{}, err
		}
		now := s.now()
		s.mu.Lock()
		s.cur, s.ok, s.okAt, s.next = c, true, now, now.Add(s.ttl())
		s.mu.Unlock()
		return c, nil
	})
	select {
	case r := <-ch:
		return r.Val.(Credentials), r.Err
	case <-ctx.Done():
		return Credentials{}, fmt.Errorf("clientcreds: get secret %s: %w", s.SecretID, ctx.Err())
	}
}

// read performs one GetSecretValue and validates the value.
func (s *Source) read(ctx context.Context) (Credentials, error) {
	if s.Client == nil || s.SecretID == "" {
		return Credentials{}, errors.New("clientcreds: Source needs a Client and a SecretID")
	}
	out, err := s.Client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.SecretID)})
	if err != nil {
		var nf *smtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return Credentials{}, fmt.Errorf("clientcreds: get secret %s: %w: %w", s.SecretID, ErrSecretNotFound, err)
		}
		return Credentials{}, fmt.Errorf("clientcreds: get secret %s: %w", s.SecretID, err)
	}
	if out.SecretString == nil {
		return Credentials{}, s.invalid("has no SecretString (binary secrets are not supported)")
	}
	c, problem := parse(*out.SecretString)
	if problem != "" {
		if strings.Contains(problem, placeholderProblem) {
			return Credentials{}, fmt.Errorf("clientcreds: secret %s %s: %w: %w", s.SecretID, problem, ErrNotConfigured, ErrInvalidSecret)
		}
		return Credentials{}, s.invalid(problem)
	}
	c.VersionID = aws.ToString(out.VersionId)
	return c, nil
}

func (s *Source) invalid(problem string) error {
	return fmt.Errorf("clientcreds: secret %s %s: %w", s.SecretID, problem, ErrInvalidSecret)
}

// parse validates the secret string and returns what is wrong with it, never quoting it.
func parse(value string) (Credentials, string) {
	var raw struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		StateKey     string `json:"state_key"`
		WebhookUser  string `json:"webhook_user"`
		WebhookPass  string `json:"webhook_password"`
	}
	value = strings.TrimSpace(value)
	if !strings.HasPrefix(value, "{") {
		return Credentials{}, "is not a JSON object"
	}
	if err := json.Unmarshal([]byte(value), &raw); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return Credentials{}, fmt.Sprintf("field %q is a JSON %s, want a string", typ.Field, typ.Value)
		}
		return Credentials{}, "is not valid JSON"
	}
	c := Credentials{
		ClientID:     strings.TrimSpace(raw.ClientID),
		ClientSecret: strings.TrimSpace(raw.ClientSecret),
		StateKey:     []byte(raw.StateKey),
	}
	for _, f := range []struct{ name, v string }{{"client_id", c.ClientID}, {"client_secret", c.ClientSecret}} {
		switch {
		case f.v == "":
			return Credentials{}, f.name + " is missing or empty"
		case strings.EqualFold(f.v, Placeholder):
			return Credentials{}, f.name + placeholderProblem + SetupHint
		}
	}
	if len(c.StateKey) < MinStateKeyLen {
		return Credentials{}, fmt.Sprintf("state_key is %d bytes, want at least %d", len(c.StateKey), MinStateKeyLen)
	}
	user, pass := strings.TrimSpace(raw.WebhookUser), raw.WebhookPass
	switch {
	case user == "" && pass == "":
		c.Webhook = webhook.DeriveCredentials(c.StateKey)
	case pass == "":
		return Credentials{}, "webhook_user is set without webhook_password"
	case len(pass) < MinWebhookPasswordLen:
		return Credentials{}, fmt.Sprintf("webhook_password is %d bytes, want at least %d", len(pass), MinWebhookPasswordLen)
	default:
		c.Webhook = webhook.Credentials{User: cmp.Or(user, webhook.DefaultUser), Password: pass}
	}
	return c, ""
}

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Source) ttl() time.Duration   { return orDefault(s.TTL, DefaultTTL) }
func (s *Source) grace() time.Duration { return orDefault(s.Grace, DefaultGrace) }
func (s *Source) retryInterval() time.Duration {
	return orDefault(s.RetryInterval, DefaultRetryInterval)
}
func (s *Source) fetchTimeout() time.Duration { return orDefault(s.FetchTimeout, DefaultFetchTimeout) }

func (s *Source) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
