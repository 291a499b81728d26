package tokenstore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The entity record's latest processed change time ("changed_at", Unix microseconds) is
// named in the expressions below.

// AdvanceEntity records that a change of the entity entityKey (webhook.Event.EntityKey) made
// at Pipedrive at time at is being processed, in ONE conditional write: the record is set to
// at unless it holds a later time. It returns false, writing nothing, when a later change of
// the entity was recorded (the change at is stale: Pipedrive delivered it late, out of order);
// true when at is as new as or newer than every change recorded (an equal time is the same
// change run again after a failure). The record lives for ttl after each advance, so an
// entity untouched that long starts afresh. Times are compared to the microsecond.
func (s *Store) AdvanceEntity(ctx context.Context, entityKey string, at time.Time, ttl time.Duration) (bool, error) {
	if entityKey == "" || len(entityKey) > maxOnceKey || at.IsZero() || ttl <= 0 {
		return false, fmt.Errorf("tokenstore: advance entity: %w: a key of 1 to %d bytes, a time and a positive ttl are required", ErrInvalid, maxOnceKey)
	}
	now := s.now()
	expr := "SET #changed_at = :at, #expires_at = :exp"
	cond := "attribute_not_exists(#pk) OR #changed_at <= :at OR #expires_at <= :now"
	_, ok, err := s.update(ctx, oncePrefix+entityKey, expr, cond, map[string]types.AttributeValue{
		":at":  num(at.UnixMicro()),
		":exp": num(unixCeil(now.Add(ttl))),
		":now": num(now.Unix()),
	})
	if err != nil {
		return false, fmt.Errorf("tokenstore: advance entity: %w", err)
	}
	return ok, nil
}
