package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// workPrefix is the key prefix of work claims: "work#<key>".
const workPrefix = "work#"

// ErrWorkClaimed: another owner holds a live claim on the work, or the work is done.
var ErrWorkClaimed = errors.New("tokenstore: work already claimed")

// WorkState is the progress of one unit of work claimed with ClaimWork.
type WorkState string

const (
	// WorkInProgress: an owner claimed the work and holds its lease.
	WorkInProgress WorkState = "in_progress"
	// WorkDone: the work finished; the record stays until ExpiresAt so repeats are recognised.
	WorkDone WorkState = "done"
)

// WorkClaim records that a unit of work (a queue job, say) is being done, or has been done, so
// that work delivered more than once runs once. Item pk "work#<key>":
//
//	state         S  in_progress | done
//	owner         S  who claimed it (kept when done)
//	lease_until   N  Unix seconds; in_progress only. Past it, another owner may take over
//	expires_at    N  Unix seconds; TTL deletes the record afterwards
//	claimed_at    S  RFC 3339
//	completed_at  S  RFC 3339; done only
type WorkClaim struct {
	Key   string
	State WorkState
	Owner string
	// LeaseUntil is when an in-progress claim may be taken over (a crashed owner's claim).
	LeaseUntil time.Time
	ClaimedAt  time.Time
	// CompletedAt is when CompleteWork ran; zero while in progress.
	CompletedAt time.Time
	// ExpiresAt is when the record lapses and the key can be claimed afresh.
	ExpiresAt time.Time
}

type workItem struct {
	PK          string `dynamodbav:"pk"`
	State       string `dynamodbav:"state"`
	Owner       string `dynamodbav:"owner"`
	LeaseUntil  int64  `dynamodbav:"lease_until,omitempty"`
	ExpiresAt   int64  `dynamodbav:"expires_at"`
	ClaimedAt   string `dynamodbav:"claimed_at,omitempty"`
	CompletedAt string `dynamodbav:"completed_at,omitempty"`
}

func decodeWork(av map[string]types.AttributeValue) (WorkClaim, error) {
	var it workItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return WorkClaim{}, fmt.Errorf("decode work claim: %w", err)
	}
	return WorkClaim{
		Key:         strings.TrimPrefix(it.PK, workPrefix),
		State:       WorkState(it.State),
		Owner:       it.Owner,
		LeaseUntil:  fromUnix(it.LeaseUntil),
		ClaimedAt:   fromText(it.ClaimedAt),
		CompletedAt: fromText(it.CompletedAt),
		ExpiresAt:   fromUnix(it.ExpiresAt),
	}, nil
}

// validWorkKey bounds keys like Once keys: 1 to 1024 bytes.
func validWorkKey(key string) bool { return key != "" && len(key) <= maxOnceKey }

// ClaimWork claims the work named workKey for owner: in progress, with a lease until now+lease,
// the record kept until now+ttl. The first caller wins and gets the new claim. A claim whose
// lease has passed (its owner crashed) is taken over the same way, and so is a record past
// its ExpiresAt. Every other caller gets the existing claim (in progress under another owner,
// or done) and ErrWorkClaimed. ttl must be at least lease.
func (s *Store) ClaimWork(ctx context.Context, workKey, owner string, lease, ttl time.Duration) (WorkClaim, error) {
	if !validWorkKey(workKey) || owner == "" || lease <= 0 || ttl < lease {
		return WorkClaim{}, fmt.Errorf("tokenstore: claim work: %w: a key of 1 to %d bytes, an owner, a positive lease and a ttl of at least the lease are required", ErrInvalid, maxOnceKey)
	}
	now := s.now()
	// A claim whose lease has passed is taken over: its owner crashed.
	const takeOver = "#state = :in_progress AND #lease_until <= :now"
	attrs, ok, err := s.putUnlessLive(ctx, workItem{
		PK:         workPrefix + workKey,
		State:      string(WorkInProgress),
		Owner:      owner,
		LeaseUntil: unixCeil(now.Add(lease)),
		ExpiresAt:  unixCeil(now.Add(ttl)),
		ClaimedAt:  text(now),
	}, now, takeOver, map[string]types.AttributeValue{":in_progress": str(string(WorkInProgress))})
	switch {
	case err != nil:
		return WorkClaim{}, fmt.Errorf("tokenstore: claim work: %w", err)
	case ok:
		return decodeWork(attrs)
	}
	if claim, derr := decodeWork(attrs); derr == nil && attrs != nil {
		return claim, fmt.Errorf("tokenstore: claim work: %w (%s)", ErrWorkClaimed, claim.State)
	}
	return WorkClaim{Key: workKey}, fmt.Errorf("tokenstore: claim work: %w", ErrWorkClaimed)
}

// CompleteWork marks owner's in-progress claim done and keeps the record until now+ttl, so a
// repeat of the work within ttl finds it done. Completing again as the same owner is not an
// error. ErrNotFound if there is no claim; ErrLeaseLost (which matches ErrConflict) if another
// owner holds or completed it.
func (s *Store) CompleteWork(ctx context.Context, workKey, owner string, ttl time.Duration) error {
	if !validWorkKey(workKey) || owner == "" || ttl <= 0 {
		return fmt.Errorf("tokenstore: complete work: %w: a key, an owner and a positive ttl are required", ErrInvalid)
	}
	now := s.now()
	attrs, ok, err := s.update(ctx, workPrefix+workKey,
		"SET #state = :done, #completed_at = :now_text, #expires_at = :expires REMOVE #lease_until",
		"#state = :in_progress AND #owner = :owner",
		map[string]types.AttributeValue{
			":done":        str(string(WorkDone)),
			":now_text":    str(text(now)),
			":expires":     num(unixCeil(now.Add(ttl))),
			":in_progress": str(string(WorkInProgress)),
			":owner":       str(owner),
		})
	if err != nil {
		return fmt.Errorf("tokenstore: complete work: %w", err)
	}
	if ok {
		return nil
	}
	if attrs == nil {
		return fmt.Errorf("tokenstore: complete work: %w", ErrNotFound)
	}
	claim, err := decodeWork(attrs)
	if err != nil {
		return fmt.Errorf("tokenstore: complete work: %w", err)
	}
	if claim.State == WorkDone && claim.Owner == owner {
		return nil
	}
	return fmt.Errorf("tokenstore: complete work: %w: claim is %s", ErrLeaseLost, claim.State)
}

// ReleaseWork deletes owner's in-progress claim after a failure, so a later delivery of the
// work can claim it at once instead of waiting for the lease. A missing claim is not an error;
// a done claim, or one another owner holds, is kept and ErrLeaseLost returned.
func (s *Store) ReleaseWork(ctx context.Context, workKey, owner string) error {
	if !validWorkKey(workKey) || owner == "" {
		return fmt.Errorf("tokenstore: release work: %w: a key and an owner are required", ErrInvalid)
	}
	kept, err := s.deleteIf(ctx, workPrefix+workKey, "#state = :in_progress AND #owner = :owner",
		map[string]types.AttributeValue{":in_progress": str(string(WorkInProgress)), ":owner": str(owner)})
	switch {
	case err != nil:
		return fmt.Errorf("tokenstore: release work: %w", err)
	case kept:
		return fmt.Errorf("tokenstore: release work: %w", ErrLeaseLost)
	}
	return nil
}
