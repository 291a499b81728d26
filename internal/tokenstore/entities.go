package tokenstore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
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

// EntityTime returns the time AdvanceEntity last recorded under entityKey, strongly
// consistent, or the zero time when nothing is recorded or the record expired.
func (s *Store) EntityTime(ctx context.Context, entityKey string) (time.Time, error) {
	if entityKey == "" || len(entityKey) > maxOnceKey {
		return time.Time{}, fmt.Errorf("tokenstore: entity time: %w: a key of 1 to %d bytes is required", ErrInvalid, maxOnceKey)
	}
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.Table),
		Key:                      key(oncePrefix + entityKey),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#changed_at, #expires_at"),
		ExpressionAttributeNames: names("#changed_at, #expires_at"),
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("tokenstore: entity time: %w", err)
	}
	var rec struct {
		ChangedAt int64 `dynamodbav:"changed_at"`
		ExpiresAt int64 `dynamodbav:"expires_at"`
	}
	if out.Item == nil {
		return time.Time{}, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &rec); err != nil {
		return time.Time{}, fmt.Errorf("tokenstore: entity time: decode: %w", err)
	}
	if rec.ChangedAt == 0 || (rec.ExpiresAt != 0 && rec.ExpiresAt <= s.now().Unix()) {
		return time.Time{}, nil
	}
	return time.UnixMicro(rec.ChangedAt).UTC(), nil
}
