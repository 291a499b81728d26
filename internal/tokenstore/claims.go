package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// workPrefix is the key prefix of work claims: "work#<key>". Code claims use the same protocol
// under codePrefix ("code#<sha256>"): see ClaimCode.
const workPrefix = "work#"

// ErrWorkClaimed: another owner holds a live claim on the work, or the work is done. Code
// claims (ClaimCode) return it too.
var ErrWorkClaimed = errors.New("tokenstore: work already claimed")

// WorkState is the progress of one unit of work claimed with ClaimWork or ClaimCode.
type WorkState string

const (
	// WorkInProgress: an owner claimed the work and holds its lease.
	WorkInProgress WorkState = "in_progress"
	// WorkDone: the work finished; the record stays until ExpiresAt so repeats are recognised.
	WorkDone WorkState = "done"
)

// WorkClaim records that a unit of work (a queue job, the exchange of an authorization code)
// is being done, or has been done, so that work delivered more than once runs once. Item pk
// "work#<key>" for jobs, "code#<sha256 hex>" for authorization codes; one shape for both:
//
//	state         S  in_progress | done
//	owner         S  who claimed it (kept when done)
//	lease_until   N  Unix seconds; in_progress only. Past it, another owner may take over
//	expires_at    N  Unix seconds; TTL deletes the record afterwards
//	claimed_at    S  RFC 3339
//	completed_at  S  RFC 3339; done only
//	company_id    N  the installation the work produced; done code claims only
//	user_id       N
//	nonce         S  which call wrote the claim (recognises the SDK's resend of its own put)
//	took_over     BOOL true when this claim replaced a live in-progress claim whose lease had
//	                   passed (written by the takeover put itself, so a resend still knows)
//	calling       BOOL the owner started a call that must not be repeated (MarkWorkCalling);
//	                   a takeover inherits it
type WorkClaim struct {
	Key   string
	State WorkState
	Owner string
	// LeaseUntil is when an in-progress claim may be taken over (a crashed owner's claim).
	LeaseUntil time.Time
	ClaimedAt  time.Time
	// CompletedAt is when the work was completed; zero while in progress.
	CompletedAt time.Time
	// ExpiresAt is when the record lapses and the key can be claimed afresh.
	ExpiresAt time.Time
	// ID is the installation the work produced, recorded by CompleteCode; zero otherwise (and
	// zero for a code whose exchange was given up, see CompleteCode).
	ID installation.ID
	// TookOver is true on a new claim that replaced an in-progress claim whose lease had
	// lapsed: its owner crashed or timed out, possibly halfway through the work. Callers whose
	// work cannot be repeated safely (a single-use code) decide on it. False on a claim
	// returned with ErrWorkClaimed.
	TookOver bool
	// Calling is true when an owner of the work marked it (MarkWorkCalling) before starting a
	// call that must not be repeated, and nothing settled the claim since. A claim taken over
	// from such an owner keeps it: TookOver with Calling means the previous owner died while
	// that call may have been carried out, and the work must not simply run again.
	Calling bool
}

// Abandoned reports whether an in-progress claim's lease has passed at now: its owner died,
// and ClaimWork or ClaimCode would take it over.
func (c WorkClaim) Abandoned(now time.Time) bool {
	return c.State == WorkInProgress && !c.LeaseUntil.IsZero() && !now.Before(c.LeaseUntil)
}

// claimItem is a claim as stored (see WorkClaim).
type claimItem struct {
	PK          string `dynamodbav:"pk"`
	State       string `dynamodbav:"state"`
	Owner       string `dynamodbav:"owner"`
	LeaseUntil  int64  `dynamodbav:"lease_until,omitempty"`
	ExpiresAt   int64  `dynamodbav:"expires_at"`
	ClaimedAt   string `dynamodbav:"claimed_at,omitempty"`
	CompletedAt string `dynamodbav:"completed_at,omitempty"`
	CompanyID   int64  `dynamodbav:"company_id,omitempty"`
	UserID      int64  `dynamodbav:"user_id,omitempty"`
	TookOver    bool   `dynamodbav:"took_over,omitempty"`
	Calling     bool   `dynamodbav:"calling,omitempty"`
}

func decodeWork(prefix string, av map[string]types.AttributeValue) (WorkClaim, error) {
	var it claimItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return WorkClaim{}, fmt.Errorf("decode claim: %w", err)
	}
	return WorkClaim{
		Key:         strings.TrimPrefix(it.PK, prefix),
		State:       WorkState(it.State),
		Owner:       it.Owner,
		LeaseUntil:  fromUnix(it.LeaseUntil),
		ClaimedAt:   fromText(it.ClaimedAt),
		CompletedAt: fromText(it.CompletedAt),
		ExpiresAt:   fromUnix(it.ExpiresAt),
		ID:          installation.ID{CompanyID: it.CompanyID, UserID: it.UserID},
		Calling:     it.Calling,
	}, nil
}

// validWorkKey bounds keys like Once keys: 1 to 1024 bytes.
func validWorkKey(key string) bool { return key != "" && len(key) <= maxOnceKey }

// ClaimWork claims the work named workKey for owner: in progress, with a lease until now+lease,
// the record kept until now+ttl. The first caller wins and gets the new claim. A claim whose
// lease has passed (its owner crashed) is taken over the same way (TookOver set), and so is a
// record past its ExpiresAt. Every other caller gets the existing claim (in progress under
// another owner, or done) and ErrWorkClaimed. ttl must be at least lease.
func (s *Store) ClaimWork(ctx context.Context, workKey, owner string, lease, ttl time.Duration) (WorkClaim, error) {
	if !validWorkKey(workKey) || owner == "" || lease <= 0 || ttl < lease {
		return WorkClaim{}, fmt.Errorf("tokenstore: claim work: %w: a key of 1 to %d bytes, an owner, a positive lease and a ttl of at least the lease are required", ErrInvalid, maxOnceKey)
	}
	c, err := s.claim(ctx, workPrefix, workKey, owner, lease, ttl)
	if err != nil {
		return c, fmt.Errorf("tokenstore: claim work: %w", err)
	}
	return c, nil
}

// CompleteWork marks owner's in-progress claim done and keeps the record until now+ttl, so a
// repeat of the work within ttl finds it done. Completing again as the same owner is not an
// error. ErrNotFound if there is no claim; ErrLeaseLost (which matches ErrConflict) if another
// owner holds or completed it.
func (s *Store) CompleteWork(ctx context.Context, workKey, owner string, ttl time.Duration) error {
	if !validWorkKey(workKey) || owner == "" || ttl <= 0 {
		return fmt.Errorf("tokenstore: complete work: %w: a key, an owner and a positive ttl are required", ErrInvalid)
	}
	if err := s.complete(ctx, workPrefix, workKey, owner, ttl, installation.ID{}); err != nil {
		return fmt.Errorf("tokenstore: complete work: %w", err)
	}
	return nil
}

// ReleaseWork deletes owner's in-progress claim after a failure, so a later delivery of the
// work can claim it at once instead of waiting for the lease. A missing claim is not an error;
// a done claim, or one another owner holds, is kept and ErrLeaseLost returned.
func (s *Store) ReleaseWork(ctx context.Context, workKey, owner string) error {
	if !validWorkKey(workKey) || owner == "" {
		return fmt.Errorf("tokenstore: release work: %w: a key and an owner are required", ErrInvalid)
	}
	if err := s.release(ctx, workPrefix, workKey, owner); err != nil {
		return fmt.Errorf("tokenstore: release work: %w", err)
	}
	return nil
}

// ForgetWork deletes the claim of workKey whatever its state, so that the work can run again:
// for an operator who checked that work dead-lettered with an unknown outcome was not carried
// out and sends it again. A missing claim is not an error. Never for a live run's claim.
func (s *Store) ForgetWork(ctx context.Context, workKey string) error {
	if !validWorkKey(workKey) {
		return fmt.Errorf("tokenstore: forget work: %w: a key of 1 to %d bytes is required", ErrInvalid, maxOnceKey)
	}
	if _, err := s.deleteIf(ctx, workPrefix+workKey, "attribute_exists(#pk)", nil); err != nil {
		return fmt.Errorf("tokenstore: forget work: %w", err)
	}
	return nil
}

// MarkWorkCalling records on owner's in-progress claim, before a call that must not be
// repeated (a POST that creates something), that the call is starting: a later ClaimWork that
// takes the claim over (this owner died) returns TookOver with Calling. ErrLeaseLost (which
// matches ErrConflict) when owner no longer holds a live claim: the call must not be made.
func (s *Store) MarkWorkCalling(ctx context.Context, workKey, owner string) error {
	if !validWorkKey(workKey) || owner == "" {
		return fmt.Errorf("tokenstore: mark work calling: %w: a key and an owner are required", ErrInvalid)
	}
	attrs, ok, err := s.update(ctx, workPrefix+workKey, "SET #calling = :true",
		"#state = :in_progress AND #owner = :owner AND #lease_until > :now",
		map[string]types.AttributeValue{
			":true": &types.AttributeValueMemberBOOL{Value: true}, ":in_progress": str(string(WorkInProgress)),
			":owner": str(owner), ":now": num(s.now().Unix()),
		})
	switch {
	case err != nil:
		return fmt.Errorf("tokenstore: mark work calling: %w", err)
	case ok:
		return nil
	case attrs == nil:
		return fmt.Errorf("tokenstore: mark work calling: %w", ErrNotFound)
	}
	return fmt.Errorf("tokenstore: mark work calling: %w: the claim's lease lapsed or another owner holds it", ErrLeaseLost)
}

// claim is the protocol's claim step for the record prefix+key (arguments validated).
func (s *Store) claim(ctx context.Context, prefix, key, owner string, lease, ttl time.Duration) (WorkClaim, error) {
	now := s.now()
	item := claimItem{
		PK:         prefix + key,
		State:      string(WorkInProgress),
		Owner:      owner,
		LeaseUntil: unixCeil(now.Add(lease)),
		ExpiresAt:  unixCeil(now.Add(ttl)),
		ClaimedAt:  text(now),
	}
	attrs, ok, err := s.putUnlessLive(ctx, item, now, "", nil)
	if err == nil && !ok && attrs != nil {
		// A live in-progress claim whose lease has passed is taken over: its owner crashed. A
		// second put, conditioned on that, records took_over in the item itself, so that the
		// SDK's resend of this put (its answer lost) still learns it was a takeover.
		if prev, derr := decodeWork(prefix, attrs); derr == nil && prev.Abandoned(now) {
			// The dead owner's call mark passes on: its call may have been carried out. The
			// put requires the mark as read, so a mark landing meanwhile is not lost.
			item.TookOver, item.Calling = true, prev.Calling
			takeOver := "#state = :in_progress AND #lease_until <= :now AND attribute_not_exists(#calling)"
			if prev.Calling {
				takeOver = "#state = :in_progress AND #lease_until <= :now AND #calling = :true"
			}
			attrs, ok, err = s.putUnlessLive(ctx, item, now, takeOver,
				map[string]types.AttributeValue{":in_progress": str(string(WorkInProgress)), ":true": &types.AttributeValueMemberBOOL{Value: true}})
		}
	}
	switch {
	case err != nil:
		return WorkClaim{}, err
	case ok:
		c, err := decodeWork(prefix, attrs)
		if err != nil {
			return WorkClaim{}, err
		}
		c.TookOver = item.TookOver
		return c, nil
	}
	if c, derr := decodeWork(prefix, attrs); derr == nil && attrs != nil {
		return c, fmt.Errorf("%w (%s)", ErrWorkClaimed, c.State)
	}
	return WorkClaim{Key: key}, ErrWorkClaimed
}

// complete is the protocol's done step; id, when valid, is recorded as what the work produced.
func (s *Store) complete(ctx context.Context, prefix, key, owner string, ttl time.Duration, id installation.ID) error {
	now := s.now()
	expr := "SET #state = :done, #completed_at = :now_text, #expires_at = :expires REMOVE #lease_until"
	vals := map[string]types.AttributeValue{
		":done":        str(string(WorkDone)),
		":now_text":    str(text(now)),
		":expires":     num(unixCeil(now.Add(ttl))),
		":in_progress": str(string(WorkInProgress)),
		":owner":       str(owner),
	}
	if id.Valid() {
		expr = "SET #state = :done, #completed_at = :now_text, #expires_at = :expires, #company_id = :company, #user_id = :user REMOVE #lease_until"
		vals[":company"], vals[":user"] = num(id.CompanyID), num(id.UserID)
	}
	attrs, ok, err := s.update(ctx, prefix+key, expr, "#state = :in_progress AND #owner = :owner", vals)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	if attrs == nil {
		return ErrNotFound
	}
	c, err := decodeWork(prefix, attrs)
	if err != nil {
		return err
	}
	if c.State == WorkDone && c.Owner == owner && c.ID == id {
		return nil // a repeat of our own completion
	}
	return fmt.Errorf("%w: claim is %s", ErrLeaseLost, c.State)
}

// release is the protocol's give-up step: owner's in-progress claim is deleted.
func (s *Store) release(ctx context.Context, prefix, key, owner string) error {
	kept, err := s.deleteIf(ctx, prefix+key, "#state = :in_progress AND #owner = :owner",
		map[string]types.AttributeValue{":in_progress": str(string(WorkInProgress)), ":owner": str(owner)})
	switch {
	case err != nil:
		return err
	case kept:
		return ErrLeaseLost
	}
	return nil
}
