package tokenstore_test

import (
	"errors"
	"testing"
	"time"

	inst "github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// TestUseMarksAndAlwaysWarm: installs are in use for their first hour; a use mark keeps an
// idle installation warm (one write, never under a lease); the always-warm flag moves the due
// entry both ways and survives a re-install.
func TestUseMarksAndAlwaysWarm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := tokenstore.InstallationID{CompanyID: 41, UserID: 42}
	in := e.install(t, id, "a")
	if !inst.Warm(in) || !in.WarmUntil.Equal(inst.UseMarkUntil(t0)) || !in.RefreshDueAt.Equal(inst.RefreshDueAt(in.ExpiresAt)) {
		t.Fatalf("Install: warm %t until %s due %s; want warm until %s, due Lead before expiry", inst.Warm(in), in.WarmUntil, in.RefreshDueAt, inst.UseMarkUntil(t0))
	}

	// Idle: refreshed after its warm window, no use since.
	e.clock.Advance(2 * time.Hour)
	leased, err := e.store.Lease(t.Context(), id, "r", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	exp := e.clock.Now().Add(time.Hour)
	idle := leased
	idle.ExpiresAt, idle.RefreshedAt = exp, e.clock.Now()
	saved, err := e.store.SaveRefreshed(t.Context(), id, "r", leased.Version, tokenstore.Tokens{AccessToken: "v1u:b", ExpiresAt: exp, NextRefresh: inst.NextRefresh(idle)})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Warm(saved) || !saved.RefreshDueAt.Equal(e.clock.Now().Add(inst.KeepAlive)) {
		t.Fatalf("after an idle refresh: warm %t due %s, want idle and due after KeepAlive", inst.Warm(saved), saved.RefreshDueAt)
	}

	// A mark under a lease, or over a stale read, does not land.
	if _, err := e.store.Lease(t.Context(), id, "other", time.Minute); err != nil {
		t.Fatal(err)
	}
	cur, _ := e.store.Get(t.Context(), id)
	if _, err := e.store.MarkUse(t.Context(), cur); !errors.Is(err, tokenstore.ErrConflict) {
		t.Errorf("MarkUse under a lease = %v, want ErrConflict", err)
	}
	if err := e.store.Release(t.Context(), id, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.MarkUse(t.Context(), cur); !errors.Is(err, tokenstore.ErrConflict) {
		t.Errorf("MarkUse over a stale read = %v, want ErrConflict", err)
	}
	cur, _ = e.store.Get(t.Context(), id)
	marked, err := e.store.MarkUse(t.Context(), cur)
	if err != nil {
		t.Fatalf("MarkUse = %v", err)
	}
	if !inst.Warm(marked) || !marked.RefreshDueAt.Equal(inst.RefreshDueAt(exp)) || marked.AccessToken != cur.AccessToken || marked.Version != cur.Version+1 {
		t.Errorf("after MarkUse: warm %t due %s version %d, want warm, due %s, version %d, the caller's tokens", inst.Warm(marked), marked.RefreshDueAt, marked.Version, inst.RefreshDueAt(exp), cur.Version+1)
	}
	if due, _ := e.store.Due(t.Context(), inst.RefreshDueAt(exp), 10); len(due) != 1 {
		t.Errorf("Due at the warm due time = %v, want the installation", due)
	}

	// Always warm: on, survives a re-install, off again.
	e.clock.Advance(3 * time.Hour) // the mark's window is over
	on, err := e.store.SetAlwaysWarm(t.Context(), id, true)
	if err != nil || !on.AlwaysWarm || !on.RefreshDueAt.Equal(inst.RefreshDueAt(exp)) {
		t.Fatalf("SetAlwaysWarm(true) = always %t due %s, %v; want set, due %s", on.AlwaysWarm, on.RefreshDueAt, err, inst.RefreshDueAt(exp))
	}
	re, err := e.store.Install(t.Context(), installation(id, "c", e.clock.Now().Add(time.Hour)))
	if err != nil || !re.AlwaysWarm {
		t.Errorf("re-install: always warm %t, %v; want kept", re.AlwaysWarm, err)
	}
	off, err := e.store.SetAlwaysWarm(t.Context(), id, false)
	if err != nil || off.AlwaysWarm {
		t.Errorf("SetAlwaysWarm(false) = %t, %v", off.AlwaysWarm, err)
	}
	if _, err := e.store.SetAlwaysWarm(t.Context(), tokenstore.InstallationID{CompanyID: 1, UserID: 2}, true); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("SetAlwaysWarm(unknown) = %v, want ErrNotFound", err)
	}
}

// TestShardClaimsAndDueIn: one owner per shard claim until it expires or is released; DueIn
// lists one shard with due times, and the shards together list what Due lists.
func TestShardClaimsAndDueIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.store.LeaseShard(t.Context(), 3, "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := e.store.LeaseShard(t.Context(), 3, "b", time.Minute); !errors.Is(err, tokenstore.ErrLeaseHeld) {
		t.Errorf("LeaseShard by another owner = %v, want ErrLeaseHeld", err)
	}
	if err := e.store.LeaseShard(t.Context(), 4, "b", time.Minute); err != nil {
		t.Errorf("LeaseShard of another shard = %v", err)
	}
	if err := e.store.ReleaseShard(t.Context(), 3, "b"); err != nil { // not b's: nothing to do
		t.Errorf("ReleaseShard by a non-owner = %v, want nil", err)
	}
	if err := e.store.LeaseShard(t.Context(), 3, "b", time.Minute); !errors.Is(err, tokenstore.ErrLeaseHeld) {
		t.Errorf("a non-owner's release freed the claim: %v", err)
	}
	e.clock.Advance(61 * time.Second)
	if err := e.store.LeaseShard(t.Context(), 3, "b", time.Minute); err != nil {
		t.Errorf("LeaseShard after the claim expired = %v", err)
	}
	if err := e.store.ReleaseShard(t.Context(), 3, "b"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.LeaseShard(t.Context(), 3, "a", time.Minute); err != nil {
		t.Errorf("LeaseShard after release = %v", err)
	}

	ids := dueFixture(t, e, 16)
	all, err := e.store.Due(t.Context(), t0.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for shard := range e.store.DueShards() {
		es, err := e.store.DueIn(t.Context(), shard, t0.Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		for i, en := range es {
			if i > 0 && en.DueAt.Before(es[i-1].DueAt) {
				t.Errorf("DueIn(%d) not oldest first", shard)
			}
			if en.DueAt.IsZero() {
				t.Errorf("DueIn(%d): %s without a due time", shard, en.ID)
			}
		}
		n += len(es)
	}
	if n != len(all) || n != len(ids) {
		t.Errorf("DueIn over every shard = %d, Due = %d, installed %d: want equal", n, len(all), len(ids))
	}
	if _, err := e.store.DueIn(t.Context(), e.store.DueShards(), t0, 1); !errors.Is(err, tokenstore.ErrInvalid) {
		t.Errorf("DueIn(out of range) = %v, want ErrInvalid", err)
	}
}
