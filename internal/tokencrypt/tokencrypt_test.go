package tokencrypt_test

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/pdkit/pipedrive-lambda-kit/internal/fakeclock"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokencrypt"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// newKey creates a KMS key in moto and returns a client and its id.
func newKey(t testing.TB) (*kms.Client, string) {
	t.Helper()
	client := kms.NewFromConfig(testenv.AWS(t))
	out, err := client.CreateKey(t.Context(), &kms.CreateKeyInput{Description: aws.String("tokencrypt test " + t.Name())})
	if err != nil {
		t.Fatalf("CreateKey = %v", err)
	}
	return client, aws.ToString(out.KeyMetadata.KeyId)
}

func TestSealOpenRoundTripAndBindings(t *testing.T) {
	client, keyID := newKey(t)
	e := &tokencrypt.Envelope{KMS: client, KeyID: keyID}
	ctx := t.Context()
	secret := []byte("v1u:access-token-SHOULD-NEVER-BE-STORED-IN-CLEAR")
	sealed, err := e.Seal(ctx, "inst#1#2", secret)
	if err != nil {
		t.Fatalf("Seal = %v", err)
	}
	if bytes.Contains(sealed, secret) || !tokencrypt.IsSealed(sealed) {
		t.Fatalf("Seal() = %q, want an opaque sealed value", sealed)
	}
	// A fresh process (no cache) opens it through KMS.
	cold := &tokencrypt.Envelope{KMS: client, KeyID: keyID}
	got, err := cold.Open(ctx, "inst#1#2", sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open(inst#1#2) = %q, %v, want the secret", got, err)
	}
	if s := cold.Stats(); s.Decrypt != 1 || s.GenerateDataKey != 0 {
		t.Errorf("cold Open made %+v KMS requests, want 1 Decrypt", s)
	}
	// Another installation's context does not open it: neither KMS nor the cached key.
	for name, env := range map[string]*tokencrypt.Envelope{"cached": e, "cold": {KMS: client, KeyID: keyID}} {
		if _, err := env.Open(ctx, "inst#1#3", sealed); !errors.Is(err, tokencrypt.ErrOpen) {
			t.Errorf("%s Open(inst#1#3, value of inst#1#2) = %v, want ErrOpen", name, err)
		}
	}
	// Altered bytes do not open.
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := e.Open(ctx, "inst#1#2", bad); !errors.Is(err, tokencrypt.ErrOpen) {
		t.Errorf("Open(altered) = %v, want ErrOpen", err)
	}
	for _, junk := range [][]byte{nil, []byte("plain"), {1}, {1, 200, 1}, sealed[:20]} {
		if _, err := e.Open(ctx, "inst#1#2", junk); !errors.Is(err, tokencrypt.ErrMalformed) {
			t.Errorf("Open(%q) = %v, want ErrMalformed", junk, err)
		}
	}
	// A value sealed under another key does not open under this one.
	_, otherKey := newKey(t)
	other := &tokencrypt.Envelope{KMS: client, KeyID: otherKey}
	foreign, err := other.Seal(ctx, "inst#1#2", secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&tokencrypt.Envelope{KMS: client, KeyID: keyID}).Open(ctx, "inst#1#2", foreign); err == nil {
		t.Errorf("Open(value sealed under another key) succeeded, want an error")
	}
}

func TestCachingBoundsKMSRequests(t *testing.T) {
	client, keyID := newKey(t)
	clock := fakeclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	e := &tokencrypt.Envelope{KMS: client, KeyID: keyID, MaxUses: 3, MaxAge: time.Minute, Now: clock.Now}
	ctx := t.Context()
	var sealed [][]byte
	for range 4 {
		s, err := e.Seal(ctx, "inst#1#2", []byte("token"))
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, s)
	}
	// Three seals per data key: the fourth needed a new one.
	if s := e.Stats(); s.GenerateDataKey != 2 {
		t.Errorf("4 seals with MaxUses 3 made %d GenerateDataKey, want 2", s.GenerateDataKey)
	}
	// Opening what this process sealed needs no KMS request.
	for _, s := range sealed {
		if _, err := e.Open(ctx, "inst#1#2", s); err != nil {
			t.Fatal(err)
		}
	}
	if s := e.Stats(); s.Decrypt != 0 {
		t.Errorf("opening own seals made %d Decrypt, want 0", s.Decrypt)
	}
	// Another installation gets its own data key (its own encryption context).
	if _, err := e.Seal(ctx, "inst#9#9", []byte("token")); err != nil {
		t.Fatal(err)
	}
	if s := e.Stats(); s.GenerateDataKey != 3 {
		t.Errorf("GenerateDataKey = %d after a seal for another installation, want 3", s.GenerateDataKey)
	}
	// Past MaxAge both caches are cold: a new data key, and Open asks KMS once per data key.
	clock.Advance(time.Minute)
	if _, err := e.Seal(ctx, "inst#1#2", []byte("token")); err != nil {
		t.Fatal(err)
	}
	if s := e.Stats(); s.GenerateDataKey != 4 {
		t.Errorf("GenerateDataKey = %d after MaxAge, want 4", s.GenerateDataKey)
	}
	for range 2 {
		if _, err := e.Open(ctx, "inst#1#2", sealed[0]); err != nil {
			t.Fatal(err)
		}
	}
	if s := e.Stats(); s.Decrypt != 1 {
		t.Errorf("Decrypt = %d after opening an expired key twice, want 1", s.Decrypt)
	}
}

func TestCacheEntriesAreBounded(t *testing.T) {
	client, keyID := newKey(t)
	e := &tokencrypt.Envelope{KMS: client, KeyID: keyID, MaxEntries: 2}
	ctx := t.Context()
	for _, pk := range []string{"inst#1#1", "inst#1#2", "inst#1#3", "inst#1#1"} {
		if _, err := e.Seal(ctx, pk, []byte("token")); err != nil {
			t.Fatal(err)
		}
	}
	// With room for two, the first installation's key (the oldest) was evicted by the third.
	if s := e.Stats(); s.GenerateDataKey != 4 {
		t.Errorf("GenerateDataKey = %d with 2 cache entries over 3 installations, want 4", s.GenerateDataKey)
	}
}
