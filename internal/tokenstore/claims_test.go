package tokenstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

const (
	workKey   = "job#api_call:3408256:5206648:abc"
	workLease = 2 * time.Minute
	dayTTL    = 24 * time.Hour
)

func TestClaimWorkLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	first, err := e.store.ClaimWork(t.Context(), workKey, "owner-a", workLease, dayTTL)
	if err != nil {
		t.Fatalf("ClaimWork(owner-a) = %v", err)
	}
	want := tokenstore.WorkClaim{Key: workKey, State: tokenstore.WorkInProgress, Owner: "owner-a",
		LeaseUntil: t0.Add(workLease), ClaimedAt: t0, ExpiresAt: t0.Add(dayTTL)}
	if first != want {
		t.Errorf("ClaimWork(owner-a) = %+v, want %+v", first, want)
	}

	second, err := e.store.ClaimWork(t.Context(), workKey, "owner-b", workLease, dayTTL)
	if !errors.Is(err, tokenstore.ErrWorkClaimed) || second.State != tokenstore.WorkInProgress || second.Owner != "owner-a" || !second.LeaseUntil.Equal(t0.Add(workLease)) {
		t.Errorf("ClaimWork(owner-b) while a holds it = %+v, %v; want a's in-progress claim, ErrWorkClaimed", second, err)
	}

	if err := e.store.CompleteWork(t.Context(), workKey, "owner-b", dayTTL); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("CompleteWork(owner-b) = %v, want ErrLeaseLost", err)
	}
	if err := e.store.ReleaseWork(t.Context(), workKey, "owner-b"); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("ReleaseWork(owner-b) = %v, want ErrLeaseLost", err)
	}

	e.clock.Advance(time.Minute)
	if err := e.store.CompleteWork(t.Context(), workKey, "owner-a", dayTTL); err != nil {
		t.Fatalf("CompleteWork(owner-a) = %v", err)
	}
	if err := e.store.CompleteWork(t.Context(), workKey, "owner-a", dayTTL); err != nil {
		t.Errorf("CompleteWork(owner-a) again = %v, want nil", err)
	}
	done, err := e.store.ClaimWork(t.Context(), workKey, "owner-c", workLease, dayTTL)
	if !errors.Is(err, tokenstore.ErrWorkClaimed) || done.State != tokenstore.WorkDone || !done.CompletedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("ClaimWork after completion = %+v, %v; want done at %s, ErrWorkClaimed", done, err, t0.Add(time.Minute))
	}
	// The done record lives ttl from completion, not from the claim.
	if !done.ExpiresAt.Equal(t0.Add(time.Minute + dayTTL)) {
		t.Errorf("done claim ExpiresAt = %s, want %s", done.ExpiresAt, t0.Add(time.Minute+dayTTL))
	}
	// A lapsed lease does not reopen finished work.
	e.clock.Advance(2 * workLease)
	if _, err := e.store.ClaimWork(t.Context(), workKey, "owner-c", workLease, dayTTL); !errors.Is(err, tokenstore.ErrWorkClaimed) {
		t.Errorf("ClaimWork of done work after the lease time = %v, want ErrWorkClaimed", err)
	}
	if err := e.store.ReleaseWork(t.Context(), workKey, "owner-a"); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("ReleaseWork of done work = %v, want ErrLeaseLost (done records are kept)", err)
	}
	// Past its expiry the record counts as absent, though moto (like DynamoDB for a while) keeps it.
	e.clock.Advance(dayTTL)
	if c, err := e.store.ClaimWork(t.Context(), workKey, "owner-d", workLease, dayTTL); err != nil || c.Owner != "owner-d" || c.TookOver {
		t.Errorf("ClaimWork after the record expired = %+v, %v; want a new claim for owner-d (not a takeover)", c, err)
	}
}

func TestClaimWorkTakesOverALapsedLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.store.ClaimWork(t.Context(), workKey, "crashed", workLease, dayTTL); err != nil {
		t.Fatalf("ClaimWork(crashed) = %v", err)
	}
	e.clock.Advance(workLease - time.Second)
	if _, err := e.store.ClaimWork(t.Context(), workKey, "next", workLease, dayTTL); !errors.Is(err, tokenstore.ErrWorkClaimed) {
		t.Errorf("ClaimWork one second before the lease ends = %v, want ErrWorkClaimed", err)
	}
	e.clock.Advance(time.Second)
	c, err := e.store.ClaimWork(t.Context(), workKey, "next", workLease, dayTTL)
	if err != nil || c.Owner != "next" || c.State != tokenstore.WorkInProgress || !c.TookOver {
		t.Fatalf("ClaimWork when the lease ended = %+v, %v; want next's claim, taken over", c, err)
	}
	if err := e.store.CompleteWork(t.Context(), workKey, "crashed", dayTTL); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("CompleteWork by the owner that lost the lease = %v, want ErrLeaseLost", err)
	}
}

func TestReleaseWorkLetsTheNextDeliveryClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.store.ClaimWork(t.Context(), workKey, "owner-a", workLease, dayTTL); err != nil {
		t.Fatalf("ClaimWork = %v", err)
	}
	if err := e.store.ReleaseWork(t.Context(), workKey, "owner-a"); err != nil {
		t.Fatalf("ReleaseWork = %v", err)
	}
	if err := e.store.ReleaseWork(t.Context(), workKey, "owner-a"); err != nil {
		t.Errorf("ReleaseWork again = %v, want nil", err)
	}
	if err := e.store.CompleteWork(t.Context(), workKey, "owner-a", dayTTL); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("CompleteWork of a released claim = %v, want ErrNotFound", err)
	}
	if c, err := e.store.ClaimWork(t.Context(), workKey, "owner-b", workLease, dayTTL); err != nil || c.Owner != "owner-b" {
		t.Errorf("ClaimWork after release = %+v, %v; want owner-b's claim", c, err)
	}
	if item := e.raw(t, "work#"+workKey); item == nil {
		t.Errorf("no item at work#%s after ClaimWork", workKey)
	}
}

func TestClaimWorkConcurrently(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wantOneWinner(t, "ClaimWork", tokenstore.ErrWorkClaimed, func(i int) error {
		_, err := e.store.ClaimWork(t.Context(), workKey, "owner-"+string(rune('a'+i)), workLease, dayTTL)
		return err
	})
}

func TestWorkClaimsRejectInvalidInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"ClaimWork with an empty key", func() error {
			_, err := e.store.ClaimWork(t.Context(), "", "o", workLease, dayTTL)
			return err
		}},
		{"ClaimWork with an oversized key", func() error {
			_, err := e.store.ClaimWork(t.Context(), strings.Repeat("k", 1025), "o", workLease, dayTTL)
			return err
		}},
		{"ClaimWork without owner", func() error {
			_, err := e.store.ClaimWork(t.Context(), workKey, "", workLease, dayTTL)
			return err
		}},
		{"ClaimWork without lease", func() error {
			_, err := e.store.ClaimWork(t.Context(), workKey, "o", 0, dayTTL)
			return err
		}},
		{"ClaimWork with ttl shorter than the lease", func() error {
			_, err := e.store.ClaimWork(t.Context(), workKey, "o", workLease, time.Minute)
			return err
		}},
		{"CompleteWork without owner", func() error { return e.store.CompleteWork(t.Context(), workKey, "", dayTTL) }},
		{"CompleteWork without ttl", func() error { return e.store.CompleteWork(t.Context(), workKey, "o", 0) }},
		{"ReleaseWork with an empty key", func() error { return e.store.ReleaseWork(t.Context(), "", "o") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tokenstore.ErrInvalid) {
				t.Errorf("%s = %v, want ErrInvalid", tt.name, err)
			}
		})
	}
}
