package webhooks

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/fakeclock"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// newKeyKey is the key a rotation in these tests puts in the secret.
const newWebhookKey = "wk-rotated-NEVER-LOGGED-8Fq2Lm5Rt1Xc7Vb3Nz"

// clockedEnv is newEnv with the receiver's clock (and its key cache's) on clk.
func clockedEnv(t *testing.T, clk *fakeclock.Clock) *env {
	t.Helper()
	e := newEnv(t)
	keys := &clientcreds.WebhookKeySource{Client: secretsmanager.NewFromConfig(testenv.AWS(t)), SecretID: e.res.WebhookKeySecretID, Now: clk.Now}
	e.h.auth = &authenticator{keys: keys, now: clk.Now}
	return e
}

func (e *env) putWebhookKeys(k webhook.Keys) {
	e.t.Helper()
	if _, err := secretsmanager.NewFromConfig(testenv.AWS(e.t)).PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(e.res.WebhookKeySecretID), SecretString: aws.String(clientcreds.FormatWebhookKeys(k))}); err != nil {
		e.t.Fatal(err)
	}
}

// TestRotationGrace: after a rotation, a delivery with the new key's credentials is accepted
// even by a receiver whose key cache predates the rotation (the unknown key id makes it read the
// secret again); the previous key's credentials are accepted until previous_until and refused
// after.
func TestRotationGrace(t *testing.T) {
	secrets.Add("rotated webhook key", newWebhookKey)
	clk := fakeclock.New(time.Now())
	e := clockedEnv(t, clk)
	e.install(acme)
	oldCreds := basic(creds.User, creds.Password)
	if _, act, _ := reply(t, e.deliver(oldCreds, v2("ev-r1", "create", 1))); act != "accepted" {
		t.Fatalf("before the rotation = %s, want accepted", act)
	}
	e.putWebhookKeys(webhook.Keys{Current: []byte(newWebhookKey), Previous: []byte(testenv.WebhookKey), PreviousUntil: clk.Now().Add(72 * time.Hour)})
	clk.Advance(time.Minute) // within the cache's TTL, past the refresh spacing
	nc := webhook.InstallationCredentials([]byte(newWebhookKey), acme)
	secrets.Add("rotated webhook password", nc.Password)
	if st, act, _ := reply(t, e.deliver(basic(nc.User, nc.Password), v2("ev-r2", "create", 1))); st != 200 || act != "accepted" {
		t.Fatalf("new key's credentials right after the rotation = %d %s, want 200 accepted", st, act)
	}
	if st, act, _ := reply(t, e.deliver(oldCreds, v2("ev-r3", "create", 1))); st != 200 || act != "accepted" {
		t.Fatalf("previous key's credentials in the grace = %d %s, want 200 accepted", st, act)
	}
	clk.Advance(72 * time.Hour)
	if st, act, reason := reply(t, e.deliver(oldCreds, v2("ev-r4", "create", 1))); st != 401 || act != "rejected" || reason != "unauthorized" {
		t.Fatalf("previous key's credentials after the grace = %d %s %s, want 401 rejected unauthorized", st, act, reason)
	}
	if st, act, _ := reply(t, e.deliver(basic(nc.User, nc.Password), v2("ev-r4", "create", 2))); st != 200 || act != "accepted" {
		t.Fatalf("new key's credentials after the grace = %d %s, want 200 accepted", st, act)
	}
	if n := len(e.queued()); n != 4 {
		t.Errorf("queued %d jobs, want 4 (ev-r1..r4)", n)
	}
}

// TestUnknownKeyIdsDoNotFloodSecretsManager: deliveries naming made-up keys are refused, and
// make the receiver read the secret again at most once per keyRefreshMinAge.
func TestUnknownKeyIdsDoNotFloodSecretsManager(t *testing.T) {
	clk := fakeclock.New(time.Now())
	e := clockedEnv(t, clk)
	e.install(acme)
	src := e.h.auth.keys.(*clientcreds.WebhookKeySource)
	cnt := &countingSM{SecretsManager: src.Client}
	src.Client = cnt
	for i := range 20 {
		fake := webhook.InstallationCredentials([]byte("made-up-key-0123456789abcdef012345-"+string(rune('a'+i))), acme)
		if st, _, _ := reply(t, e.deliver(basic(fake.User, fake.Password), v2("ev-f", "create", i+1))); st != 401 {
			t.Fatalf("made-up key %d = %d, want 401", i, st)
		}
	}
	if n := cnt.calls; n != 1 {
		t.Errorf("GetSecretValue calls for 20 made-up keys = %d, want 1 (the first fill; refreshes spaced by %v)", n, keyRefreshMinAge)
	}
	clk.Advance(keyRefreshMinAge)
	fake := webhook.InstallationCredentials([]byte("made-up-key-0123456789abcdef012345-z"), acme)
	e.deliver(basic(fake.User, fake.Password), v2("ev-f", "create", 99))
	if n := cnt.calls; n != 2 {
		t.Errorf("GetSecretValue calls after %v = %d, want 2", keyRefreshMinAge, n)
	}
}

type countingSM struct {
	clientcreds.SecretsManager
	calls int
}

func (c *countingSM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.calls++
	return c.SecretsManager.GetSecretValue(ctx, in, opts...)
}

// TestLegacyPairDuringUpgrade: with WEBHOOK_LEGACY_UNTIL ahead, the deployment-wide pair of an
// older deployment (from the client secret) is accepted for any installation's events, as it
// was before the upgrade; at WEBHOOK_LEGACY_UNTIL it is refused. Installation credentials work
// throughout.
func TestLegacyPairDuringUpgrade(t *testing.T) {
	clk := fakeclock.New(time.Now())
	e := clockedEnv(t, clk)
	e.install(acme)
	e.install(other)
	legacy := &clientcreds.Source{Client: secretsmanager.NewFromConfig(testenv.AWS(t)), SecretID: e.res.SecretID, Now: clk.Now}
	e.h.auth.legacy, e.h.auth.legacyUntil = legacy, clk.Now().Add(7*24*time.Hour)
	old := basic(legacyCreds.User, legacyCreds.Password)
	for _, id := range []struct {
		name string
		body string
	}{{"acme", v2("ev-l1", "create", 1)}, {"other", v2For(other, other.UserID, "ev-l2", "create", 1)}} {
		if st, act, _ := reply(t, e.deliver(old, id.body)); st != 200 || act != "accepted" {
			t.Errorf("legacy pair in its grace, %s's event = %d %s, want 200 accepted", id.name, st, act)
		}
	}
	clk.Advance(7 * 24 * time.Hour)
	if st, act, _ := reply(t, e.deliver(old, v2("ev-l3", "create", 1))); st != 401 || act != "rejected" {
		t.Errorf("legacy pair after WEBHOOK_LEGACY_UNTIL = %d %s, want 401 rejected", st, act)
	}
	if st, act, _ := reply(t, e.deliver(basic(creds.User, creds.Password), v2("ev-l3", "create", 2))); st != 200 || act != "accepted" {
		t.Errorf("installation credentials after WEBHOOK_LEGACY_UNTIL = %d %s, want 200 accepted", st, act)
	}
}

func TestNewAuthenticator(t *testing.T) {
	keys, legacy := &clientcreds.WebhookKeySource{}, &clientcreds.Source{}
	tests := []struct {
		name    string
		keys    *clientcreds.WebhookKeySource
		legacy  *clientcreds.Source
		until   string
		wantErr bool
	}{
		{"keys only", keys, nil, "", false},
		{"legacy until a time", keys, legacy, "2026-12-31T00:00:00Z", false},
		{"no keys", nil, legacy, "", true},
		{"legacy until without the client secret", keys, nil, "2026-12-31T00:00:00Z", true},
		{"legacy until not a time", keys, legacy, "next week", true},
	}
	for _, tt := range tests {
		a, err := newAuthenticator(tt.keys, tt.legacy, tt.until)
		if (err != nil) != tt.wantErr {
			t.Errorf("newAuthenticator(%s) = %v, want error %t", tt.name, err, tt.wantErr)
		}
		if err == nil && (tt.until == "") != (a.legacy == nil) {
			t.Errorf("newAuthenticator(%s): legacy accepted = %t, want %t", tt.name, a.legacy != nil, tt.until != "")
		}
	}
}
