package tokenstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func TestHashCode(t *testing.T) {
	// sha256("abc"), from FIPS 180-2.
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := tokenstore.HashCode("abc"); got != want {
		t.Errorf("HashCode(abc) = %s, want %s", got, want)
	}
}

func TestClaimCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const code = "authorization-code-abc"
	h := tokenstore.HashCode(code)

	first, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute)
	if err != nil {
		t.Fatalf("ClaimCode(first) = %v", err)
	}
	if first.State != tokenstore.CodeExchanging || first.CodeHash != h || !first.ExpiresAt.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("ClaimCode(first) = %+v, want exchanging until %s", first, t0.Add(10*time.Minute))
	}
	for name, av := range e.raw(t, "code#"+h) {
		if s, ok := av.(*types.AttributeValueMemberS); ok && strings.Contains(s.Value, code) {
			t.Errorf("stored claim attribute %s holds the authorization code itself", name)
		}
	}

	second, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute)
	if !errors.Is(err, tokenstore.ErrCodeClaimed) || second.State != tokenstore.CodeExchanging {
		t.Errorf("ClaimCode(second) = %+v, %v; want state exchanging, ErrCodeClaimed", second, err)
	}

	if err := e.store.CompleteCode(t.Context(), h, acme); err != nil {
		t.Fatalf("CompleteCode = %v", err)
	}
	if err := e.store.CompleteCode(t.Context(), h, acme); err != nil {
		t.Errorf("CompleteCode again with the same installation = %v, want nil", err)
	}
	other := tokenstore.InstallationID{CompanyID: 1, UserID: 2}
	if err := e.store.CompleteCode(t.Context(), h, other); !errors.Is(err, tokenstore.ErrConflict) {
		t.Errorf("CompleteCode with another installation = %v, want ErrConflict", err)
	}
	third, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute)
	if !errors.Is(err, tokenstore.ErrCodeClaimed) || third.State != tokenstore.CodeDone || third.ID != acme {
		t.Errorf("ClaimCode after completion = %+v, %v; want done for %s, ErrCodeClaimed", third, err, acme)
	}
	if err := e.store.ReleaseCode(t.Context(), h); !errors.Is(err, tokenstore.ErrConflict) {
		t.Errorf("ReleaseCode of a done claim = %v, want ErrConflict", err)
	}
	if _, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute); !errors.Is(err, tokenstore.ErrCodeClaimed) {
		t.Errorf("ClaimCode after refused release = %v, want ErrCodeClaimed (done claims are kept)", err)
	}

	// Past its expiry a claim counts as absent, though moto (like DynamoDB for a while) keeps it.
	e.clock.Advance(10 * time.Minute)
	if _, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute); err != nil {
		t.Errorf("ClaimCode after the claim expired = %v, want nil", err)
	}
}

func TestReleaseCodeLetsTheUserRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := tokenstore.HashCode("code-to-retry")
	if _, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute); err != nil {
		t.Fatalf("ClaimCode = %v", err)
	}
	if err := e.store.ReleaseCode(t.Context(), h); err != nil {
		t.Fatalf("ReleaseCode = %v", err)
	}
	if err := e.store.ReleaseCode(t.Context(), h); err != nil {
		t.Errorf("ReleaseCode again = %v, want nil", err)
	}
	if err := e.store.CompleteCode(t.Context(), h, acme); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("CompleteCode of a released claim = %v, want ErrNotFound", err)
	}
	if c, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute); err != nil || c.State != tokenstore.CodeExchanging {
		t.Errorf("ClaimCode after release = %+v, %v; want a new exchanging claim", c, err)
	}
}

func TestClaimCodeConcurrently(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := tokenstore.HashCode("code-delivered-five-times")
	wantOneWinner(t, "ClaimCode", tokenstore.ErrCodeClaimed, func(int) error {
		_, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute)
		return err
	})
}

func TestRecordsRejectInvalidInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"ClaimCode with a raw code", func() error {
			_, err := e.store.ClaimCode(t.Context(), "raw-code", time.Minute)
			return err
		}},
		{"ClaimCode with uppercase hex", func() error {
			_, err := e.store.ClaimCode(t.Context(), strings.ToUpper(tokenstore.HashCode("x")), time.Minute)
			return err
		}},
		{"ClaimCode without ttl", func() error {
			_, err := e.store.ClaimCode(t.Context(), tokenstore.HashCode("x"), 0)
			return err
		}},
		{"CompleteCode with a raw code", func() error { return e.store.CompleteCode(t.Context(), "raw-code", acme) }},
		{"CompleteCode without installation", func() error {
			return e.store.CompleteCode(t.Context(), tokenstore.HashCode("x"), tokenstore.InstallationID{})
		}},
		{"ReleaseCode with a raw code", func() error { return e.store.ReleaseCode(t.Context(), "raw-code") }},
		{"Once with an empty key", func() error {
			_, err := e.store.Once(t.Context(), "", time.Minute)
			return err
		}},
		{"Once with an oversized key", func() error {
			_, err := e.store.Once(t.Context(), strings.Repeat("k", 1025), time.Minute)
			return err
		}},
		{"Once without ttl", func() error {
			_, err := e.store.Once(t.Context(), "k", -time.Second)
			return err
		}},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, tokenstore.ErrInvalid) {
			t.Errorf("%s = %v, want ErrInvalid", tt.name, err)
		}
	}
}

func TestOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	steps := []struct {
		advance time.Duration
		key     string
		want    bool
	}{
		{0, "alert:refresh_token_invalid:3408256:5206648", true},
		{0, "alert:refresh_token_invalid:3408256:5206648", false},
		{0, "alert:refresh_token_invalid:3408256:1", true},
		{59 * time.Minute, "alert:refresh_token_invalid:3408256:5206648", false},
		{time.Minute, "alert:refresh_token_invalid:3408256:5206648", true}, // expired at t0+1h
		{0, "alert:refresh_token_invalid:3408256:5206648", false},
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		got, err := e.store.Once(t.Context(), s.key, time.Hour)
		if err != nil || got != s.want {
			t.Errorf("step %d: Once(%s) at t0+%s = %t, %v; want %t", i, s.key, e.clock.Now().Sub(t0), got, err, s.want)
		}
	}
}
