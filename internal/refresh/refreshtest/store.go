// Package refreshtest provides an in-memory refresh.Store, so the refresh logic (and code built
// on it) can be tested without DynamoDB. Its methods keep the contract *tokenstore.Store
// documents: the same conditions, the same domain errors (installation.Err…), the same fields
// written. The moto-backed tests of internal/refresh and internal/tokenstore remain the proof
// that the real store behaves so.
package refreshtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
)

var (
	_ refresh.Store       = (*Store)(nil)
	_ refresh.Lister      = (*Store)(nil)
	_ refresh.ShardLeases = (*Store)(nil)
)

// ErrInvalid is returned for a missing argument, as tokenstore returns its ErrInvalid.
var ErrInvalid = errors.New("refreshtest: invalid argument")

// Store is an in-memory store of installations. The zero value is empty and ready; it is safe
// for concurrent use.
type Store struct {
	// Now is the clock for leases and timestamps; time.Now when nil.
	Now func() time.Time
	// Fail, when set, is asked before every method with the method's name ("Lease",
	// "SaveRefreshed", "RecordFailure", "MarkNeedsReauth", "Release", "Due"); a non-nil error
	// is returned as a store failure and nothing changes. ("DueIn" asks as "Due".)
	Fail func(op string, id installation.ID) error
	// Shards is how many shards the due list is split into (1 when zero).
	Shards int

	mu sync.Mutex
	m  map[installation.ID]installation.Installation
	// claims are the shard claims: owner and until.
	claims map[int]claim
	// calls counts method calls by name.
	calls map[string]int
}

type claim struct {
	owner string
	until time.Time
}

// Put stores in as given (an active installation without RefreshDueAt gets the due rule's
// installation.NextRefresh(in)), replacing any installation with its ID.
func (s *Store) Put(in installation.Installation) {
	if in.Status == installation.StatusActive && in.RefreshDueAt.IsZero() {
		in.RefreshDueAt = installation.NextRefresh(in)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[installation.ID]installation.Installation{}
	}
	s.m[in.ID] = in
}

// Get returns the stored installation and whether there is one.
func (s *Store) Get(id installation.ID) (installation.Installation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.m[id]
	return in, ok
}

// Update changes a stored installation in place, as another process's write would (it does not
// touch Version unless f does); false if there is none.
func (s *Store) Update(id installation.ID, f func(*installation.Installation)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.m[id]
	if ok {
		f(&in)
		s.m[id] = in
	}
	return ok
}

// Calls reports how often the method op was called.
func (s *Store) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Lease takes id's lease for owner until now+ttl: while active and the lease is free, expired or
// owner's. ErrLeaseHeld, ErrNotActive, ErrNotFound.
func (s *Store) Lease(_ context.Context, id installation.ID, owner string, ttl time.Duration) (installation.Installation, error) {
	if owner == "" || ttl <= 0 {
		return installation.Installation{}, fmt.Errorf("refreshtest: lease %s: %w", id, ErrInvalid)
	}
	return s.write("Lease", id, func(in *installation.Installation, now time.Time) error {
		switch {
		case in.Status != installation.StatusActive:
			return fmt.Errorf("%w (%s)", installation.ErrNotActive, in.Status)
		case in.LeaseOwner != "" && in.LeaseOwner != owner && in.LeaseUntil.After(now):
			return installation.ErrLeaseHeld
		}
		in.LeaseOwner, in.LeaseUntil = owner, now.Add(ttl)
		return nil
	})
}

// SaveRefreshed stores tok while owner holds the lease at version on an active installation;
// see refresh.Store. ErrLeaseLost, ErrConflict, ErrNotActive, ErrNotFound.
func (s *Store) SaveRefreshed(_ context.Context, id installation.ID, owner string, version int64, tok installation.Tokens) (installation.Installation, error) {
	if owner == "" || tok.AccessToken == "" || tok.ExpiresAt.IsZero() {
		return installation.Installation{}, fmt.Errorf("refreshtest: save refreshed %s: %w", id, ErrInvalid)
	}
	return s.write("SaveRefreshed", id, func(in *installation.Installation, now time.Time) error {
		if in.Version != version || in.LeaseOwner != owner || in.Status != installation.StatusActive {
			if in.AccessToken == tok.AccessToken && in.Version == version+1 && in.Status == installation.StatusActive {
				return errRepeated // a save that already landed
			}
			return ownerFailure(*in, owner, true)
		}
		in.AccessToken, in.ExpiresAt = tok.AccessToken, tok.ExpiresAt
		in.RefreshToken = cmp.Or(tok.RefreshToken, in.RefreshToken)
		in.APIDomain = cmp.Or(tok.APIDomain, in.APIDomain)
		if tok.Scopes != nil {
			in.Scopes = slices.Clone(tok.Scopes)
		}
		in.RefreshDueAt = tok.NextRefresh
		if in.RefreshDueAt.IsZero() {
			in.RefreshDueAt = installation.RefreshDueAt(tok.ExpiresAt)
		}
		if !tok.WarmUntil.IsZero() {
			in.WarmUntil = tok.WarmUntil
		}
		in.FailureCount, in.LastFailure = 0, ""
		in.RefreshedAt = now
		in.LeaseOwner, in.LeaseUntil = "", time.Time{}
		return nil
	})
}

// RecordFailure counts a failure due again at retryAt and releases owner's lease.
// ErrLeaseLost, ErrNotActive, ErrNotFound.
func (s *Store) RecordFailure(_ context.Context, id installation.ID, owner, reason string, retryAt time.Time) error {
	if owner == "" || retryAt.IsZero() {
		return fmt.Errorf("refreshtest: record failure %s: %w", id, ErrInvalid)
	}
	_, err := s.write("RecordFailure", id, func(in *installation.Installation, _ time.Time) error {
		if in.LeaseOwner != owner || in.Status != installation.StatusActive {
			return ownerFailure(*in, owner, false)
		}
		in.FailureCount++
		in.LastFailure, in.RefreshDueAt = reason, retryAt
		in.LeaseOwner, in.LeaseUntil = "", time.Time{}
		return nil
	})
	return err
}

// MarkNeedsReauth sets StatusNeedsReauth, takes the installation off the due list and releases
// owner's lease. ErrLeaseLost, ErrNotActive, ErrNotFound.
func (s *Store) MarkNeedsReauth(_ context.Context, id installation.ID, owner, reason string) error {
	if owner == "" {
		return fmt.Errorf("refreshtest: mark needs reauthorization %s: %w", id, ErrInvalid)
	}
	_, err := s.write("MarkNeedsReauth", id, func(in *installation.Installation, _ time.Time) error {
		if in.LeaseOwner != owner || in.Status != installation.StatusActive {
			return ownerFailure(*in, owner, false)
		}
		in.Status = installation.StatusNeedsReauth
		in.FailureCount++
		in.LastFailure, in.RefreshDueAt = reason, time.Time{}
		in.LeaseOwner, in.LeaseUntil = "", time.Time{}
		return nil
	})
	return err
}

// Release drops owner's lease. ErrLeaseLost, ErrNotFound.
func (s *Store) Release(_ context.Context, id installation.ID, owner string) error {
	if owner == "" {
		return fmt.Errorf("refreshtest: release %s: %w", id, ErrInvalid)
	}
	_, err := s.write("Release", id, func(in *installation.Installation, _ time.Time) error {
		if in.LeaseOwner != owner {
			return installation.ErrLeaseLost
		}
		in.LeaseOwner, in.LeaseUntil = "", time.Time{}
		return nil
	})
	return err
}

// Due lists up to limit active installations due at or before before, oldest due first.
func (s *Store) Due(_ context.Context, before time.Time, limit int) ([]installation.ID, error) {
	due, err := s.due(-1, before, limit)
	if err != nil {
		return nil, err
	}
	ids := make([]installation.ID, len(due))
	for i, e := range due {
		ids[i] = e.ID
	}
	return ids, nil
}

// DueShards is Shards, at least 1.
func (s *Store) DueShards() int { return max(s.Shards, 1) }

// DueIn lists up to limit active installations of shard due at or before before, oldest due
// first. An installation's shard is ShardOf(id, DueShards()).
func (s *Store) DueIn(_ context.Context, shard int, before time.Time, limit int) ([]installation.DueEntry, error) {
	if shard < 0 || shard >= s.DueShards() {
		return nil, fmt.Errorf("refreshtest: due in shard %d: %w", shard, ErrInvalid)
	}
	return s.due(shard, before, limit)
}

// ShardOf is the due shard of id among shards (FNV-1a of its string form).
func ShardOf(id installation.ID, shards int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id.String()))
	return int(h.Sum32() % uint32(max(shards, 1)))
}

// due lists shard's due entries (every shard's with -1).
func (s *Store) due(shard int, before time.Time, limit int) ([]installation.DueEntry, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("refreshtest: due: %w", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.called("Due", installation.ID{}); err != nil {
		return nil, fmt.Errorf("refreshtest: due: %w", err)
	}
	var due []installation.DueEntry
	for _, in := range s.m {
		if in.Status == installation.StatusActive && !in.RefreshDueAt.After(before) &&
			(shard < 0 || ShardOf(in.ID, s.DueShards()) == shard) {
			due = append(due, installation.DueEntry{ID: in.ID, DueAt: in.RefreshDueAt})
		}
	}
	slices.SortFunc(due, func(a, b installation.DueEntry) int {
		return cmp.Or(a.DueAt.Compare(b.DueAt),
			cmp.Compare(a.ID.CompanyID, b.ID.CompanyID), cmp.Compare(a.ID.UserID, b.ID.UserID))
	})
	return due[:min(limit, len(due))], nil
}

// Reschedule drops owner's lease and makes the installation due at dueAt. ErrLeaseLost,
// ErrNotActive, ErrNotFound.
func (s *Store) Reschedule(_ context.Context, id installation.ID, owner string, dueAt time.Time) error {
	if owner == "" || dueAt.IsZero() {
		return fmt.Errorf("refreshtest: reschedule %s: %w", id, ErrInvalid)
	}
	_, err := s.write("Reschedule", id, func(in *installation.Installation, _ time.Time) error {
		if in.LeaseOwner != owner || in.Status != installation.StatusActive {
			return ownerFailure(*in, owner, false)
		}
		in.RefreshDueAt = dueAt
		in.LeaseOwner, in.LeaseUntil = "", time.Time{}
		return nil
	})
	return err
}

// MarkUse records a use of in as read (see refresh.Store): conditional on its Version, on
// being active and on no lease. ErrConflict, ErrNotFound.
func (s *Store) MarkUse(_ context.Context, in installation.Installation) (installation.Installation, error) {
	return s.write("MarkUse", in.ID, func(cur *installation.Installation, now time.Time) error {
		if cur.Version != in.Version || cur.Status != installation.StatusActive || cur.LeaseOwner != "" {
			return fmt.Errorf("%w: changed since read", installation.ErrConflict)
		}
		cur.WarmUntil = installation.UseMarkUntil(now)
		cur.RefreshDueAt = installation.NextRefresh(*cur)
		return nil
	})
}

// SetAlwaysWarm sets or clears id's always-warm flag and moves its due time to the rule's.
// ErrNotActive, ErrLeaseHeld (a refresh is in flight), ErrNotFound.
func (s *Store) SetAlwaysWarm(_ context.Context, id installation.ID, on bool) (installation.Installation, error) {
	return s.write("SetAlwaysWarm", id, func(cur *installation.Installation, _ time.Time) error {
		switch {
		case cur.Status != installation.StatusActive:
			return fmt.Errorf("%w (%s)", installation.ErrNotActive, cur.Status)
		case cur.LeaseOwner != "":
			return installation.ErrLeaseHeld
		}
		cur.AlwaysWarm = on
		cur.RefreshDueAt = installation.NextRefresh(*cur)
		return nil
	})
}

// LeaseShard claims shard for owner until now+ttl. ErrLeaseHeld while another owner's claim
// lasts.
func (s *Store) LeaseShard(_ context.Context, shard int, owner string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.called("LeaseShard", installation.ID{}); err != nil {
		return fmt.Errorf("refreshtest: lease shard %d: %w", shard, err)
	}
	now := s.now()
	if c, ok := s.claims[shard]; ok && c.owner != owner && c.until.After(now) {
		return fmt.Errorf("refreshtest: lease shard %d: %w", shard, installation.ErrLeaseHeld)
	}
	if s.claims == nil {
		s.claims = map[int]claim{}
	}
	s.claims[shard] = claim{owner: owner, until: now.Add(ttl)}
	return nil
}

// ReleaseShard gives up owner's claim on shard (nothing when owner does not hold it).
func (s *Store) ReleaseShard(_ context.Context, shard int, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.called("ReleaseShard", installation.ID{}); err != nil {
		return fmt.Errorf("refreshtest: release shard %d: %w", shard, err)
	}
	if c, ok := s.claims[shard]; ok && c.owner == owner {
		delete(s.claims, shard)
	}
	return nil
}

// errRepeated makes write return the installation unchanged and no error.
var errRepeated = errors.New("repeated")

// write applies f to id's installation under the lock; when f succeeds the installation's
// Version goes up by one and UpdatedAt becomes now.
func (s *Store) write(op string, id installation.ID, f func(in *installation.Installation, now time.Time) error) (installation.Installation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.called(op, id); err != nil {
		return installation.Installation{}, fmt.Errorf("refreshtest: %s %s: %w", op, id, err)
	}
	in, ok := s.m[id]
	if !ok {
		return installation.Installation{}, fmt.Errorf("refreshtest: %s %s: %w", op, id, installation.ErrNotFound)
	}
	now := s.now()
	next := in
	next.Scopes = slices.Clone(in.Scopes)
	switch err := f(&next, now); {
	case errors.Is(err, errRepeated):
		return in, nil
	case err != nil:
		return installation.Installation{}, fmt.Errorf("refreshtest: %s %s: %w", op, id, err)
	}
	next.Version++
	next.UpdatedAt = now
	s.m[id] = next
	return next, nil
}

// called counts op and asks Fail; the caller holds mu.
func (s *Store) called(op string, id installation.ID) error {
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[op]++
	if s.Fail != nil {
		return s.Fail(op, id)
	}
	return nil
}

// ownerFailure explains a write that needed owner's lease on an active installation (and, when
// versioned, the leased version), as tokenstore does.
func ownerFailure(in installation.Installation, owner string, versioned bool) error {
	switch {
	case in.Status != installation.StatusActive:
		return fmt.Errorf("%w (%s)", installation.ErrNotActive, in.Status)
	case in.LeaseOwner != "" && in.LeaseOwner != owner:
		return installation.ErrLeaseLost
	case in.LeaseOwner == "" && !versioned:
		return installation.ErrLeaseLost
	default:
		return fmt.Errorf("%w: now at version %d", installation.ErrConflict, in.Version)
	}
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
