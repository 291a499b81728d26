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

// TestMarkWorkCallingPassesToTheTakeover: an owner that marked its claim before a call that
// must not be repeated, and died, leaves the mark to the delivery that takes over; a takeover
// of an unmarked claim has none; a lapsed or foreign owner cannot mark.
func TestMarkWorkCallingPassesToTheTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.store.ClaimWork(t.Context(), workKey, "crashed", workLease, dayTTL); err != nil {
		t.Fatalf("ClaimWork(crashed) = %v", err)
	}
	if err := e.store.MarkWorkCalling(t.Context(), workKey, "other"); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("MarkWorkCalling by another owner = %v, want ErrLeaseLost", err)
	}
	if err := e.store.MarkWorkCalling(t.Context(), workKey, "crashed"); err != nil {
		t.Fatalf("MarkWorkCalling(crashed) = %v", err)
	}
	e.clock.Advance(workLease)
	if err := e.store.MarkWorkCalling(t.Context(), workKey, "crashed"); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("MarkWorkCalling after the lease ended = %v, want ErrLeaseLost", err)
	}
	c, err := e.store.ClaimWork(t.Context(), workKey, "next", workLease, dayTTL)
	if err != nil || !c.TookOver || !c.Calling {
		t.Fatalf("ClaimWork over a marked, abandoned claim = %+v, %v; want TookOver and Calling", c, err)
	}
	// The mark stays with the claim until it is settled: a second takeover still sees it.
	e.clock.Advance(workLease)
	if c, err := e.store.ClaimWork(t.Context(), workKey, "third", workLease, dayTTL); err != nil || !c.TookOver || !c.Calling {
		t.Errorf("second takeover = %+v, %v; want TookOver and Calling", c, err)
	}
	if err := e.store.ReleaseWork(t.Context(), workKey, "third"); err != nil {
		t.Fatalf("ReleaseWork(third) = %v", err)
	}
	if c, err := e.store.ClaimWork(t.Context(), workKey, "fresh", workLease, dayTTL); err != nil || c.TookOver || c.Calling {
		t.Errorf("ClaimWork after release = %+v, %v; want a fresh claim without the mark", c, err)
	}

	// A done claim is forgotten on an operator's word: the work can be claimed afresh.
	if err := e.store.CompleteWork(t.Context(), workKey, "fresh", dayTTL); err != nil {
		t.Fatal(err)
	}
	if err := e.store.ForgetWork(t.Context(), workKey); err != nil {
		t.Fatalf("ForgetWork = %v", err)
	}
	if err := e.store.ForgetWork(t.Context(), workKey); err != nil {
		t.Errorf("ForgetWork of a missing claim = %v, want nil", err)
	}
	if c, err := e.store.ClaimWork(t.Context(), workKey, "after", workLease, dayTTL); err != nil || c.TookOver || c.Calling {
		t.Errorf("ClaimWork after ForgetWork = %+v, %v; want a fresh claim", c, err)
	}

	// A claim taken over before its owner marked it carries no mark: the job runs again.
	const unmarked = "apicall#job#1:2#unmarked"
	if _, err := e.store.ClaimWork(t.Context(), unmarked, "crashed", workLease, dayTTL); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(workLease)
	if c, err := e.store.ClaimWork(t.Context(), unmarked, "next", workLease, dayTTL); err != nil || !c.TookOver || c.Calling {
		t.Errorf("takeover of an unmarked claim = %+v, %v; want TookOver without Calling", c, err)
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
