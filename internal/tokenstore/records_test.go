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
	if first.State != tokenstore.WorkInProgress || first.Key != h || first.Owner == "" || first.TookOver ||
		!first.ExpiresAt.Equal(t0.Add(10*time.Minute)) || !first.LeaseUntil.Equal(t0.Add(tokenstore.CodeLease)) {
		t.Errorf("ClaimCode(first) = %+v, want in progress for a new owner, lease until %s, until %s",
			first, t0.Add(tokenstore.CodeLease), t0.Add(10*time.Minute))
	}
	for name, av := range e.raw(t, "code#"+h) {
		if s, ok := av.(*types.AttributeValueMemberS); ok && strings.Contains(s.Value, code) {
			t.Errorf("stored claim attribute %s holds the authorization code itself", name)
		}
	}

	second, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute)
	if !errors.Is(err, tokenstore.ErrWorkClaimed) || second.State != tokenstore.WorkInProgress || second.Owner != first.Owner {
		t.Errorf("ClaimCode(second) = %+v, %v; want the first owner's in-progress claim, ErrWorkClaimed", second, err)
	}
	if err := e.store.CompleteCode(t.Context(), h, "not-the-owner", acme, 10*time.Minute); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("CompleteCode by another owner = %v, want ErrLeaseLost", err)
	}

	if err := e.store.CompleteCode(t.Context(), h, first.Owner, acme, 10*time.Minute); err != nil {
		t.Fatalf("CompleteCode = %v", err)
	}
	if err := e.store.CompleteCode(t.Context(), h, first.Owner, acme, 10*time.Minute); err != nil {
		t.Errorf("CompleteCode again with the same installation = %v, want nil", err)
	}
	other := tokenstore.InstallationID{CompanyID: 1, UserID: 2}
	if err := e.store.CompleteCode(t.Context(), h, first.Owner, other, 10*time.Minute); !errors.Is(err, tokenstore.ErrConflict) {
		t.Errorf("CompleteCode with another installation = %v, want ErrConflict", err)
	}
	third, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute)
	if !errors.Is(err, tokenstore.ErrWorkClaimed) || third.State != tokenstore.WorkDone || third.ID != acme {
		t.Errorf("ClaimCode after completion = %+v, %v; want done for %s, ErrWorkClaimed", third, err, acme)
	}
	if err := e.store.ReleaseCode(t.Context(), h, first.Owner); !errors.Is(err, tokenstore.ErrConflict) {
		t.Errorf("ReleaseCode of a done claim = %v, want ErrConflict", err)
	}
	// A lapsed lease does not reopen a finished exchange.
	e.clock.Advance(2 * tokenstore.CodeLease)
	if _, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute); !errors.Is(err, tokenstore.ErrWorkClaimed) {
		t.Errorf("ClaimCode after refused release = %v, want ErrWorkClaimed (done claims are kept)", err)
	}

	// Past its expiry a claim counts as absent, though moto (like DynamoDB for a while) keeps it.
	e.clock.Advance(10*time.Minute - 2*tokenstore.CodeLease)
	if c, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute); err != nil || c.TookOver {
		t.Errorf("ClaimCode after the claim expired = %+v, %v; want a fresh claim", c, err)
	}
}

// TestClaimCodeTakesOverAnAbandonedClaim: a callback that claimed a code and died leaves an
// in-progress claim; once its lease (CodeLease) has passed, the next claim takes it over and
// says so, and the dead owner can no longer complete it.
func TestClaimCodeTakesOverAnAbandonedClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := tokenstore.HashCode("code-of-a-crashed-callback")
	crashed, err := e.store.ClaimCode(t.Context(), h, 30*time.Minute)
	if err != nil {
		t.Fatalf("ClaimCode(crashed) = %v", err)
	}
	e.clock.Advance(tokenstore.CodeLease - time.Second)
	held, err := e.store.ClaimCode(t.Context(), h, 30*time.Minute)
	if !errors.Is(err, tokenstore.ErrWorkClaimed) || held.Abandoned(e.clock.Now()) {
		t.Errorf("ClaimCode one second before the lease ends = %+v, %v; want ErrWorkClaimed, not abandoned", held, err)
	}
	if !held.Abandoned(e.clock.Now().Add(time.Second)) {
		t.Errorf("claim.Abandoned(at its lease end) = false, want true")
	}
	e.clock.Advance(time.Second)
	next, err := e.store.ClaimCode(t.Context(), h, 30*time.Minute)
	if err != nil || !next.TookOver || next.Owner == crashed.Owner || next.State != tokenstore.WorkInProgress {
		t.Fatalf("ClaimCode when the lease ended = %+v, %v; want a takeover by a new owner", next, err)
	}
	if err := e.store.CompleteCode(t.Context(), h, crashed.Owner, acme, time.Hour); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("CompleteCode by the owner that lost the lease = %v, want ErrLeaseLost", err)
	}
	if err := e.store.RetireCode(t.Context(), h, next.Owner, 30*time.Minute); err != nil {
		t.Fatalf("RetireCode = %v", err)
	}
	e.clock.Advance(10 * tokenstore.CodeLease)
	retired, err := e.store.ClaimCode(t.Context(), h, 30*time.Minute)
	if !errors.Is(err, tokenstore.ErrWorkClaimed) || retired.State != tokenstore.WorkDone || retired.ID.Valid() {
		t.Errorf("ClaimCode of a retired code = %+v, %v; want done without installation, ErrWorkClaimed", retired, err)
	}
}

func TestReleaseCodeLetsTheUserRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := tokenstore.HashCode("code-to-retry")
	c, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute)
	if err != nil {
		t.Fatalf("ClaimCode = %v", err)
	}
	if err := e.store.ReleaseCode(t.Context(), h, "not-the-owner"); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("ReleaseCode by another owner = %v, want ErrLeaseLost", err)
	}
	if err := e.store.ReleaseCode(t.Context(), h, c.Owner); err != nil {
		t.Fatalf("ReleaseCode = %v", err)
	}
	if err := e.store.ReleaseCode(t.Context(), h, c.Owner); err != nil {
		t.Errorf("ReleaseCode again = %v, want nil", err)
	}
	if err := e.store.CompleteCode(t.Context(), h, c.Owner, acme, time.Minute); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("CompleteCode of a released claim = %v, want ErrNotFound", err)
	}
	if c, err := e.store.ClaimCode(t.Context(), h, 10*time.Minute); err != nil || c.State != tokenstore.WorkInProgress || c.TookOver {
		t.Errorf("ClaimCode after release = %+v, %v; want a new in-progress claim", c, err)
	}
}

func TestClaimCodeConcurrently(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := tokenstore.HashCode("code-delivered-five-times")
	wantOneWinner(t, "ClaimCode", tokenstore.ErrWorkClaimed, func(int) error {
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
		{"ClaimCode with a ttl shorter than the lease", func() error {
			_, err := e.store.ClaimCode(t.Context(), tokenstore.HashCode("x"), tokenstore.CodeLease-time.Second)
			return err
		}},
		{"CompleteCode with a raw code", func() error { return e.store.CompleteCode(t.Context(), "raw-code", "o", acme, time.Minute) }},
		{"CompleteCode without installation", func() error {
			return e.store.CompleteCode(t.Context(), tokenstore.HashCode("x"), "o", tokenstore.InstallationID{}, time.Minute)
		}},
		{"CompleteCode without owner", func() error {
			return e.store.CompleteCode(t.Context(), tokenstore.HashCode("x"), "", acme, time.Minute)
		}},
		{"CompleteCode without ttl", func() error { return e.store.CompleteCode(t.Context(), tokenstore.HashCode("x"), "o", acme, 0) }},
		{"RetireCode with a raw code", func() error { return e.store.RetireCode(t.Context(), "raw-code", "o", time.Minute) }},
		{"ReleaseCode with a raw code", func() error { return e.store.ReleaseCode(t.Context(), "raw-code", "o") }},
		{"ReleaseCode without owner", func() error { return e.store.ReleaseCode(t.Context(), tokenstore.HashCode("x"), "") }},
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
