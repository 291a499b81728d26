package tokenstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// shardPrefix is the key prefix of the refresh-due shards' lease records.
const shardPrefix = "shard#"

// DueShards is how many shards the refresh-due index is split into (Shards, DefaultShards when
// zero): DueIn lists one of them, LeaseShard claims one for a refresher run.
func (s *Store) DueShards() int { return s.shards() }

// DueIn returns up to limit installations of shard (0 <= shard < DueShards) whose refresh is
// due at or before before, oldest first, with their due times. Like Due it reads the
// eventually consistent index: callers lease each installation before acting.
func (s *Store) DueIn(ctx context.Context, shard int, before time.Time, limit int) ([]installation.DueEntry, error) {
	if limit <= 0 || shard < 0 || shard >= s.shards() {
		return nil, fmt.Errorf("tokenstore: due in shard %d: %w: want 0 <= shard < %d and a positive limit", shard, ErrInvalid, s.shards())
	}
	entries, err := s.dueInShard(ctx, strconv.Itoa(shard), before.Unix(), limit)
	if err != nil {
		return nil, fmt.Errorf("tokenstore: due: %w", err)
	}
	out := make([]installation.DueEntry, len(entries))
	for i, e := range entries {
		out[i] = installation.DueEntry{ID: e.id, DueAt: fromUnix(e.due)}
	}
	return out, nil
}

// LeaseShard claims shard of the refresh-due index for owner until now+ttl, so that of several
// refresher runs at once (overlapping schedules, fanned-out invocations) one works each
// shard and the others spend one request instead of racing for every installation in it. It
// succeeds while the shard is unclaimed, its claim expired, or owner already holds it.
// ErrLeaseHeld otherwise. The record (pk "shard#<n>") expires by TTL a day after the claim.
func (s *Store) LeaseShard(ctx context.Context, shard int, owner string, ttl time.Duration) error {
	if owner == "" || ttl <= 0 {
		return fmt.Errorf("tokenstore: lease shard %d: %w: owner and a positive ttl are required", shard, ErrInvalid)
	}
	now := s.now()
	const cond = "attribute_not_exists(#pk) OR #lease_until <= :now OR #owner = :owner"
	item := map[string]types.AttributeValue{
		attrPK:         str(shardPrefix + strconv.Itoa(shard)),
		"owner":        str(owner),
		attrLeaseUntil: num(unixCeil(now.Add(ttl))),
		attrExpiresAt:  num(now.Add(ttl + 24*time.Hour).Unix()),
		"claimed_at":   str(text(now)),
	}
	_, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.Table),
		Item:                      item,
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names(cond),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(now.Unix()), ":owner": str(owner)},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("tokenstore: lease shard %d: %w", shard, ErrLeaseHeld)
	}
	if err != nil {
		return fmt.Errorf("tokenstore: lease shard %d: %w", shard, err)
	}
	return nil
}

// ReleaseShard gives up owner's claim on shard. Releasing a claim owner no longer holds (it
// expired and another run took it) is not an error: there is nothing left to give up.
func (s *Store) ReleaseShard(ctx context.Context, shard int, owner string) error {
	const cond = "#owner = :owner"
	_, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.Table),
		Key:                       key(shardPrefix + strconv.Itoa(shard)),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names(cond),
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": str(owner)},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("tokenstore: release shard %d: %w", shard, err)
	}
	return nil
}
