package tokenstore_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// dueFixture installs installations 0..n-1 (company 100+i, user 7) in a shuffled order, each
// due at t0+(5+i) minutes (expiring 10 minutes later).
func dueFixture(t *testing.T, e *env, n int) []tokenstore.InstallationID {
	t.Helper()
	ids := make([]tokenstore.InstallationID, n)
	for i := range ids {
		ids[i] = tokenstore.InstallationID{CompanyID: int64(100 + i), UserID: 7}
	}
	for k := range n {
		i := (k * 7) % n // n is never a multiple of 7 here: a permutation
		in := installation(ids[i], "a", t0.Add(time.Duration(15+i)*time.Minute))
		if _, err := e.store.Install(t.Context(), in); err != nil {
			t.Fatalf("Install(%s) = %v", ids[i], err)
		}
	}
	return ids
}

func TestDue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := dueFixture(t, e, 16)

	lease(t, e, ids[3], "refresher-1")
	if err := e.store.MarkNeedsReauth(t.Context(), ids[3], "refresher-1", "refresh_token_invalid"); err != nil {
		t.Fatalf("MarkNeedsReauth = %v", err)
	}
	if _, err := e.store.Uninstall(t.Context(), ids[7]); err != nil {
		t.Fatalf("Uninstall = %v", err)
	}
	lease(t, e, ids[5], "refresher-2") // leased installations stay listed

	pick := func(is ...int) []tokenstore.InstallationID {
		out := make([]tokenstore.InstallationID, len(is))
		for k, i := range is {
			out[k] = ids[i]
		}
		return out
	}
	tests := []struct {
		before time.Time
		limit  int
		want   []tokenstore.InstallationID
	}{
		{t0.Add(16 * time.Minute), 100, pick(0, 1, 2, 4, 5, 6, 8, 9, 10, 11)},
		{t0.Add(16*time.Minute + 59*time.Second), 100, pick(0, 1, 2, 4, 5, 6, 8, 9, 10, 11)},
		{t0.Add(16 * time.Minute), 4, pick(0, 1, 2, 4)},
		{t0.Add(16 * time.Minute), 1, pick(0)},
		{t0.Add(5 * time.Minute), 10, pick(0)},
		{t0.Add(5*time.Minute - time.Second), 10, pick()},
		{t0.Add(time.Hour), 100, pick(0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15)},
	}
	for _, tt := range tests {
		got, err := e.store.Due(t.Context(), tt.before, tt.limit)
		if err != nil {
			t.Fatalf("Due(%s, %d) = %v", tt.before, tt.limit, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Due(t0+%s, %d) = %v, want %v", tt.before.Sub(t0), tt.limit, got, tt.want)
		}
	}

	// The fixture must span several shards, or the merge above proved nothing.
	shards := map[string]bool{}
	for _, id := range ids {
		if s, ok := e.raw(t, fmt.Sprintf("inst#%d#%d", id.CompanyID, id.UserID))["due_shard"].(*types.AttributeValueMemberS); ok {
			shards[s.Value] = true
		}
	}
	if len(shards) < 3 {
		t.Errorf("the fixture's installations are in %d due shards, want at least 3 of %d", len(shards), tokenstore.DefaultShards)
	}

	for _, limit := range []int{0, -1} {
		if _, err := e.store.Due(t.Context(), t0, limit); !errors.Is(err, tokenstore.ErrInvalid) {
			t.Errorf("Due(limit %d) = %v, want ErrInvalid", limit, err)
		}
	}
}

func TestDuePages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.store.Shards = 2
	tokenstore.SetPageSize(e.store, 2)
	ids := dueFixture(t, e, 9)
	for _, limit := range []int{7, 9, 100} {
		got, err := e.store.Due(t.Context(), t0.Add(time.Hour), limit)
		if err != nil {
			t.Fatalf("Due(limit %d) = %v", limit, err)
		}
		if want := ids[:min(limit, len(ids))]; !slices.Equal(got, want) {
			t.Errorf("Due(limit %d) with pages of 2 = %v, want %v", limit, got, want)
		}
	}
}

func BenchmarkDue(b *testing.B) {
	e := newEnv(b)
	for i := range 40 {
		id := tokenstore.InstallationID{CompanyID: int64(100 + i), UserID: 7}
		if _, err := e.store.Install(b.Context(), installation(id, "a", t0.Add(time.Duration(15+i)*time.Minute))); err != nil {
			b.Fatalf("Install = %v", err)
		}
	}
	for b.Loop() {
		if got, err := e.store.Due(b.Context(), t0.Add(time.Hour), 25); err != nil || len(got) != 25 {
			b.Fatalf("Due = %d ids, %v; want 25", len(got), err)
		}
	}
}
