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
	"slices"
	"sync"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
)

var (
	_ refresh.Store  = (*Store)(nil)
	_ refresh.Lister = (*Store)(nil)
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
	// is returned as a store failure and nothing changes.
	Fail func(op string, id installation.ID) error

	mu sync.Mutex
	m  map[installation.ID]installation.Installation
	// calls counts method calls by name.
	calls map[string]int
}

// Put stores in as given (an active installation without RefreshDueAt gets
// installation.RefreshDueAt(in.ExpiresAt)), replacing any installation with its ID.
func (s *Store) Put(in installation.Installation) {
	if in.Status == installation.StatusActive && in.RefreshDueAt.IsZero() {
		in.RefreshDueAt = installation.RefreshDueAt(in.ExpiresAt)
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
		in.RefreshDueAt = installation.RefreshDueAt(tok.ExpiresAt)
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
	if limit <= 0 {
		return nil, fmt.Errorf("refreshtest: due: %w", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.called("Due", installation.ID{}); err != nil {
		return nil, fmt.Errorf("refreshtest: due: %w", err)
	}
	var due []installation.Installation
	for _, in := range s.m {
		if in.Status == installation.StatusActive && !in.RefreshDueAt.After(before) {
			due = append(due, in)
		}
	}
	slices.SortFunc(due, func(a, b installation.Installation) int {
		return cmp.Or(a.RefreshDueAt.Compare(b.RefreshDueAt),
			cmp.Compare(a.ID.CompanyID, b.ID.CompanyID), cmp.Compare(a.ID.UserID, b.ID.UserID))
	})
	ids := make([]installation.ID, 0, min(limit, len(due)))
	for _, in := range due[:min(limit, len(due))] {
		ids = append(ids, in.ID)
	}
	return ids, nil
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
