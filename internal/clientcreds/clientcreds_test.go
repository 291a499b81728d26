package clientcreds_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/fakeclock"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// runLog collects every Source's log of the run; TestMain fails the run if it holds a secret
// (as is, escaped, base64 or a 12+ character piece).
var (
	runLog  testenv.Buffer
	secrets testenv.Secrets
)

func TestMain(m *testing.M) {
	secrets.Add("client secret", canarySecret)
	secrets.Add("state key", canaryKey)
	os.Exit(testenv.MainCheckingLogs(m, &runLog, &secrets))
}

const (
	canarySecret = "canary-client-secret-NEVER-PRINT-9a7e"
	canaryKey    = "canary-state-key-NEVER-PRINT-0123456789abcdef"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// counting wraps the real Secrets Manager client and counts GetSecretValue calls; when gate is
// not nil every call waits for it to close.
type counting struct {
	clientcreds.SecretsManager
	calls atomic.Int32
	gate  chan struct{}
}

func (c *counting) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.calls.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	return c.SecretsManager.GetSecretValue(ctx, in, opts...)
}

var _ clientcreds.SecretsManager = (*counting)(nil)

func sm(t *testing.T) *secretsmanager.Client {
	t.Helper()
	return secretsmanager.NewFromConfig(testenv.AWS(t))
}

// secretJSON builds a secret value.
func secretJSON(id, secret, key string) string {
	return fmt.Sprintf(`{"client_id":%q,"client_secret":%q,"state_key":%q}`, id, secret, key)
}

// createSecret creates a secret holding value in moto and deletes it when t ends.
func createSecret(t *testing.T, value string) string {
	t.Helper()
	client := sm(t)
	out, err := client.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(testenv.Prefix(t) + "client"), SecretString: aws.String(value),
	})
	if err != nil {
		t.Fatalf("CreateSecret() error = %v", err)
	}
	t.Cleanup(func() { deleteSecret(t, aws.ToString(out.ARN)) })
	return aws.ToString(out.ARN)
}

func deleteSecret(t *testing.T, id string) {
	t.Helper()
	_, err := sm(t).DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(id), ForceDeleteWithoutRecovery: aws.Bool(true)})
	if err != nil && !strings.Contains(err.Error(), "ResourceNotFound") {
		t.Errorf("DeleteSecret(%s) error = %v", id, err)
	}
}

func putSecret(t *testing.T, id, value string) {
	t.Helper()
	if _, err := sm(t).PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value)}); err != nil {
		t.Fatalf("PutSecretValue() error = %v", err)
	}
}

// source returns a Source for id on a fake clock, logging into the returned buffer.
func source(t *testing.T, id string) (*clientcreds.Source, *counting, *fakeclock.Clock, *testenv.Buffer) {
	t.Helper()
	clk := fakeclock.New(t0)
	logs := &testenv.Buffer{}
	cnt := &counting{SecretsManager: sm(t)}
	return &clientcreds.Source{
		Client: cnt, SecretID: id, Now: clk.Now,
		Logger: slog.New(slog.NewJSONHandler(io.MultiWriter(logs, &runLog), nil)),
	}, cnt, clk, logs
}

// assertNoSecrets fails if s shows any secret part used in these tests.
func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{canarySecret, canaryKey, testenv.ClientSecret, testenv.StateKey} {
		if strings.Contains(s, secret) {
			t.Errorf("%s = %q, contains a secret", what, s)
		}
	}
}

func TestLoadProvisionedSecret(t *testing.T) {
	r := testenv.Provision(t)
	src, _, _, _ := source(t, r.SecretID)
	c, err := src.Load(context.Background())
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	if c.ClientID != testenv.ClientID || c.ClientSecret != testenv.ClientSecret || string(c.StateKey) != testenv.StateKey {
		t.Errorf("Load() = %v, want the testenv credentials", c)
	}
	if c.VersionID == "" {
		t.Errorf("Load().VersionID is empty, want the Secrets Manager version")
	}
	id, secret, err := src.OAuthCredentials(context.Background())
	if err != nil || id != testenv.ClientID || secret != testenv.ClientSecret {
		t.Errorf("OAuthCredentials() = %q, <secret ok: %v>, %v; want %q, the secret, nil", id, secret == testenv.ClientSecret, err, testenv.ClientID)
	}
}

func TestLoadRejectsBadSecrets(t *testing.T) {
	longKey := canaryKey
	tests := []struct {
		name, value, wantText string
	}{
		{"not JSON", "client_id=x&client_secret=" + canarySecret, "not a JSON object"},
		{"JSON array", `["` + canarySecret + `"]`, "not a JSON object"},
		{"truncated JSON", `{"client_id":"id","client_secret":"` + canarySecret, "not valid JSON"},
		{"empty object", `{}`, "client_id is missing"},
		{"empty client_id", secretJSON("", canarySecret, longKey), "client_id is missing"},
		{"blank client_secret", secretJSON("id", "   ", longKey), "client_secret is missing"},
		{"template placeholder as deployed", secretJSON("REPLACE_ME", "REPLACE_ME", longKey), "client_id is still the REPLACE_ME placeholder"},
		{"placeholder client_secret", secretJSON("id", "replace_me", longKey), "client_secret is still the REPLACE_ME placeholder"},
		{"state_key missing", `{"client_id":"id","client_secret":"` + canarySecret + `"}`, "state_key is 0 bytes"},
		{"state_key 31 bytes", secretJSON("id", canarySecret, longKey[:31]), "state_key is 31 bytes, want at least 32"},
		{"webhook_user without password", `{"client_id":"id","client_secret":"` + canarySecret + `","state_key":"` + longKey + `","webhook_user":"pd"}`, "webhook_user is set without webhook_password"},
		{"webhook_password too short", `{"client_id":"id","client_secret":"` + canarySecret + `","state_key":"` + longKey + `","webhook_password":"short"}`, "webhook_password is 5 bytes, want at least 16"},
		{"client_id a number", `{"client_id":12345,"client_secret":"` + canarySecret + `","state_key":"` + longKey + `"}`, `"client_id" is a JSON number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := createSecret(t, tt.value)
			src, _, _, _ := source(t, id)
			c, err := src.Load(context.Background())
			if !errors.Is(err, clientcreds.ErrInvalidSecret) {
				t.Fatalf("Load() = %v, %v; want ErrInvalidSecret", c, err)
			}
			if !strings.Contains(err.Error(), tt.wantText) || !strings.Contains(err.Error(), id) {
				t.Errorf("Load() error = %q, want it to name the secret and say %q", err, tt.wantText)
			}
			assertNoSecrets(t, "Load() error", err.Error())
			if _, err := src.Get(context.Background()); !errors.Is(err, clientcreds.ErrInvalidSecret) {
				t.Errorf("Get() after a failed Load = %v, want ErrInvalidSecret", err)
			}
			// Only the deployed placeholder means "not configured yet"; every other problem is
			// a broken secret a person must be alerted to.
			if got, want := errors.Is(err, clientcreds.ErrNotConfigured), strings.Contains(tt.wantText, "REPLACE_ME"); got != want {
				t.Errorf("errors.Is(%q, ErrNotConfigured) = %t, want %t", err, got, want)
			}
			if errors.Is(err, clientcreds.ErrNotConfigured) && !strings.Contains(err.Error(), "pdctl setup") {
				t.Errorf("Load() error = %q, want it to say how to configure (pdctl setup)", err)
			}
		})
	}
}

func TestWebhookCredentials(t *testing.T) {
	derived := createSecret(t, secretJSON("id", canarySecret, canaryKey))
	src, _, _, _ := source(t, derived)
	c, err := src.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := webhook.DeriveCredentials([]byte(canaryKey)); c.Webhook != want || !c.Webhook.Valid() {
		t.Errorf("Load().Webhook = %v, want the pair derived from state_key", c.Webhook)
	}
	explicit := createSecret(t, `{"client_id":"id","client_secret":"`+canarySecret+`","state_key":"`+canaryKey+`","webhook_password":"0123456789abcdef-pw"}`)
	src, _, _, _ = source(t, explicit)
	if c, err = src.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.Webhook != (webhook.Credentials{User: webhook.DefaultUser, Password: "0123456789abcdef-pw"}) {
		t.Errorf("Load().Webhook = %v, want the secret's webhook_password with the default user", c.Webhook)
	}
	if strings.Contains(fmt.Sprintf("%v %+v %#v", c, c, c), "0123456789abcdef-pw") {
		t.Errorf("Credentials print the webhook password")
	}
}

func TestLoadShortestValidStateKey(t *testing.T) {
	id := createSecret(t, secretJSON(" id ", canarySecret+"\n", canaryKey[:32]))
	src, _, _, _ := source(t, id)
	c, err := src.Load(context.Background())
	if err != nil {
		t.Fatalf("Load() with a 32-byte state_key error = %v", err)
	}
	if c.ClientID != "id" || c.ClientSecret != canarySecret {
		t.Errorf("Load() did not trim pasted whitespace: client_id %q", c.ClientID)
	}
}

func TestLoadBinarySecret(t *testing.T) {
	client := sm(t)
	out, err := client.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(testenv.Prefix(t) + "bin"), SecretBinary: []byte(secretJSON("id", canarySecret, canaryKey)),
	})
	if err != nil {
		t.Fatalf("CreateSecret(binary) error = %v", err)
	}
	t.Cleanup(func() { deleteSecret(t, aws.ToString(out.ARN)) })
	src, _, _, _ := source(t, aws.ToString(out.ARN))
	if _, err := src.Load(context.Background()); !errors.Is(err, clientcreds.ErrInvalidSecret) {
		t.Errorf("Load(binary secret) = %v, want ErrInvalidSecret", err)
	}
}

func TestLoadMissingSecret(t *testing.T) {
	src, _, _, _ := source(t, testenv.Prefix(t)+"does-not-exist")
	_, err := src.Load(context.Background())
	if !errors.Is(err, clientcreds.ErrSecretNotFound) {
		t.Fatalf("Load(missing) = %v, want ErrSecretNotFound", err)
	}
	if _, err := src.Get(context.Background()); !errors.Is(err, clientcreds.ErrSecretNotFound) {
		t.Errorf("Get(missing) = %v, want ErrSecretNotFound", err)
	}
}

func TestSourceWithoutClient(t *testing.T) {
	if _, err := (&clientcreds.Source{SecretID: "x"}).Load(context.Background()); err == nil {
		t.Errorf("Load() without a Client = nil error, want an error")
	}
}

func TestRotationIsSeenAfterTTL(t *testing.T) {
	id := createSecret(t, secretJSON("id-1", canarySecret+"-1", canaryKey))
	src, cnt, clk, _ := source(t, id)
	first, err := src.Get(context.Background())
	if err != nil || first.ClientSecret != canarySecret+"-1" {
		t.Fatalf("Get() = %v, %v; want version 1", first, err)
	}
	putSecret(t, id, secretJSON("id-2", canarySecret+"-2", canaryKey+"-2"))

	clk.Advance(clientcreds.DefaultTTL - time.Second)
	if c, err := src.Get(context.Background()); err != nil || c.ClientSecret != canarySecret+"-1" {
		t.Errorf("Get() before TTL = secret 2: %v, %v; want the cached version 1", c.ClientSecret == canarySecret+"-2", err)
	}
	if n := cnt.calls.Load(); n != 1 {
		t.Errorf("GetSecretValue calls before TTL = %d, want 1", n)
	}
	clk.Advance(time.Second)
	c, err := src.Get(context.Background())
	if err != nil || c.ClientID != "id-2" || c.ClientSecret != canarySecret+"-2" || string(c.StateKey) != canaryKey+"-2" {
		t.Errorf("Get() at TTL = client_id %q, %v; want the rotated value", c.ClientID, err)
	}
	if c.VersionID == first.VersionID {
		t.Errorf("VersionID = %q after rotation, want a new version", c.VersionID)
	}
	if n := cnt.calls.Load(); n != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2", n)
	}
}

func TestInvalidateForcesFetch(t *testing.T) {
	id := createSecret(t, secretJSON("id-1", canarySecret, canaryKey))
	src, _, _, _ := source(t, id)
	if _, err := src.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	putSecret(t, id, secretJSON("id-2", canarySecret, canaryKey))
	src.Invalidate()
	if c, err := src.Get(context.Background()); err != nil || c.ClientID != "id-2" {
		t.Errorf("Get() after Invalidate = %q, %v; want id-2", c.ClientID, err)
	}
}

func TestGraceServesLastGoodValue(t *testing.T) {
	for _, breakIt := range []struct {
		name    string
		do      func(t *testing.T, id string)
		wantErr error
	}{
		{"secret deleted", func(t *testing.T, id string) { deleteSecret(t, id) }, clientcreds.ErrSecretNotFound},
		{"bad value put", func(t *testing.T, id string) { putSecret(t, id, secretJSON("REPLACE_ME", canarySecret, canaryKey)) }, clientcreds.ErrInvalidSecret},
	} {
		t.Run(breakIt.name, func(t *testing.T) {
			id := createSecret(t, secretJSON("id-1", canarySecret, canaryKey))
			src, cnt, clk, logs := source(t, id)
			good, err := src.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			breakIt.do(t, id)

			clk.Advance(clientcreds.DefaultTTL)
			c, err := src.Get(context.Background())
			if err != nil || c.ClientID != good.ClientID || c.ClientSecret != good.ClientSecret {
				t.Fatalf("Get() after a failed refresh = %q, %v; want the last good value, nil", c.ClientID, err)
			}
			if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "serving the last good value") {
				t.Errorf("logs = %q, want a warning about serving the last good value", logs)
			}
			assertNoSecrets(t, "logs", logs.String())

			// Within RetryInterval the failing fetch is not repeated.
			calls := cnt.calls.Load()
			clk.Advance(clientcreds.DefaultRetryInterval - time.Second)
			if _, err := src.Get(context.Background()); err != nil {
				t.Errorf("Get() within the retry interval error = %v", err)
			}
			if n := cnt.calls.Load(); n != calls {
				t.Errorf("GetSecretValue calls within the retry interval = %d, want %d", n, calls)
			}
			clk.Advance(time.Second)
			if _, err := src.Get(context.Background()); err != nil {
				t.Errorf("Get() after the retry interval error = %v, want the stale value", err)
			}
			if n := cnt.calls.Load(); n != calls+1 {
				t.Errorf("GetSecretValue calls after the retry interval = %d, want %d", n, calls+1)
			}

			// Load never falls back.
			if _, err := src.Load(context.Background()); !errors.Is(err, breakIt.wantErr) {
				t.Errorf("Load() = %v, want %v", err, breakIt.wantErr)
			}

			// Past the grace period the error comes through.
			clk.Advance(clientcreds.DefaultGrace)
			if _, err := src.Get(context.Background()); !errors.Is(err, breakIt.wantErr) {
				t.Errorf("Get() after grace = %v, want %v", err, breakIt.wantErr)
			}
		})
	}
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	id := createSecret(t, secretJSON("id-1", canarySecret, canaryKey))
	src, cnt, _, _ := source(t, id)
	cnt.gate = make(chan struct{})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			c, err := src.Get(context.Background())
			if err == nil && c.ClientID != "id-1" {
				err = fmt.Errorf("client_id %q", c.ClientID)
			}
			errs <- err
		})
	}
	// Let every goroutine reach the in-flight fetch, then let it finish.
	time.Sleep(100 * time.Millisecond)
	close(cnt.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Get() error = %v", err)
		}
	}
	if got := cnt.calls.Load(); got != 1 {
		t.Errorf("GetSecretValue calls for %d concurrent Get = %d, want 1", n, got)
	}
}

func TestCallerCancellationDoesNotFailOthers(t *testing.T) {
	id := createSecret(t, secretJSON("id-1", canarySecret, canaryKey))
	src, cnt, _, _ := source(t, id)
	cnt.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := src.Get(ctx); first <- err }()
	time.Sleep(50 * time.Millisecond)
	second := make(chan error, 1)
	go func() { _, err := src.Get(context.Background()); second <- err }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("Get(canceled ctx) = %v, want context.Canceled", err)
	}
	close(cnt.gate)
	if err := <-second; err != nil {
		t.Errorf("Get() sharing the fetch of a canceled caller = %v, want nil", err)
	}
}

func TestCredentialsNeverPrintSecrets(t *testing.T) {
	c := clientcreds.Credentials{ClientID: testenv.ClientID, ClientSecret: canarySecret, StateKey: []byte(canaryKey), VersionID: "v-1"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "creds", c)
	for what, s := range map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c), "String()": c.String(),
		"%v of pointer": fmt.Sprintf("%v", &c), "slog": buf.String(),
	} {
		assertNoSecrets(t, what, s)
		if strings.Contains(s, testenv.ClientID) {
			t.Errorf("%s = %q, contains the client id", what, s)
		}
		if !strings.Contains(s, "v-1") {
			t.Errorf("%s = %q, want the version shown", what, s)
		}
	}
}
