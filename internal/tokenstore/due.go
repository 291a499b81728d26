package tokenstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"
)

// maxPage caps one Query page. DynamoDB stops a page at 1 MB anyway (about 10,000 keys-only
// entries of the due index); a large cap lists a shard in one request where it can (moto,
// like any index without a key-range seek, reads the whole table per request).
const maxPage = 20000

// Due returns up to limit installations whose refresh is due at or before before, oldest due
// first. Only active installations are in the refresh-due index. It queries every shard of the
// index in parallel, following pages, and never scans the table.
//
// The index is eventually consistent: an installation refreshed, uninstalled or marked for
// reauthorization a moment ago may still be listed, so callers Lease each one and skip it on
// ErrNotActive or when the leased installation is no longer due. Leased installations are
// listed too (Lease reports ErrLeaseHeld).
func (s *Store) Due(ctx context.Context, before time.Time, limit int) ([]InstallationID, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("tokenstore: due: %w: limit must be positive", ErrInvalid)
	}
	perShard := make([][]dueEntry, s.shards())
	g, gctx := errgroup.WithContext(ctx)
	for i := range perShard {
		g.Go(func() error {
			var err error
			perShard[i], err = s.dueInShard(gctx, strconv.Itoa(i), before.Unix(), limit)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("tokenstore: due: %w", err)
	}
	// Each shard's list is sorted and holds its first limit entries, so the first limit of the
	// merge are the oldest overall.
	all := slices.Concat(perShard...)
	slices.SortFunc(all, func(a, b dueEntry) int {
		return cmp.Or(cmp.Compare(a.due, b.due),
			cmp.Compare(a.id.CompanyID, b.id.CompanyID), cmp.Compare(a.id.UserID, b.id.UserID))
	})
	ids := make([]InstallationID, 0, min(limit, len(all)))
	for _, e := range all[:min(limit, len(all))] {
		ids = append(ids, e.id)
	}
	return ids, nil
}

func (s *Store) page() int {
	if s.pageSize > 0 {
		return s.pageSize
	}
	return maxPage
}

type dueEntry struct {
	id  InstallationID
	due int64
}

// dueInShard returns the first limit entries of one shard due at or before before (Unix
// seconds), oldest first.
func (s *Store) dueInShard(ctx context.Context, shard string, before int64, limit int) ([]dueEntry, error) {
	const keyCond = "#due_shard = :shard AND #refresh_due_at <= :before"
	var (
		out   []dueEntry
		start map[string]types.AttributeValue
	)
	for {
		page, err := s.DB.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.Table),
			IndexName:                 aws.String(dueIndex),
			KeyConditionExpression:    aws.String(keyCond),
			ExpressionAttributeNames:  names(keyCond),
			ExpressionAttributeValues: map[string]types.AttributeValue{":shard": str(shard), ":before": num(before)},
			ScanIndexForward:          aws.Bool(true),
			Limit:                     aws.Int32(int32(min(limit-len(out), s.page()))),
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", shard, err)
		}
		for _, av := range page.Items {
			var k struct {
				PK  string `dynamodbav:"pk"`
				Due int64  `dynamodbav:"refresh_due_at"`
			}
			if err := attributevalue.UnmarshalMap(av, &k); err != nil {
				return nil, fmt.Errorf("shard %s: decode: %w", shard, err)
			}
			id, err := parseInstKey(k.PK)
			if err != nil {
				return nil, fmt.Errorf("shard %s: %w", shard, err)
			}
			out = append(out, dueEntry{id: id, due: k.Due})
		}
		if len(out) >= limit || page.LastEvaluatedKey == nil {
			return out, nil
		}
		start = page.LastEvaluatedKey
	}
}
