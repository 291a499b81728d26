package tokenstore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// attemptPrefix keys attempt counters: "attempt#<key>#<window start, Unix seconds>".
const attemptPrefix = "attempt#"

// CountAttempt counts one attempt under name in the fixed window of length window that holds
// the current time, and reports whether the count is still within limit: the first limit
// attempts of a window are allowed, later ones are refused without being counted. Counters
// are TTL'd records (expires_at at the window's end), one conditional UpdateItem per call. Use
// it to cap costly work per source (token-endpoint calls per client IP or per OAuth state).
func (s *Store) CountAttempt(ctx context.Context, name string, limit int, window time.Duration) (allowed bool, err error) {
	if name == "" || len(name) > maxOnceKey || limit <= 0 || window < time.Second {
		return false, fmt.Errorf("tokenstore: count attempt: %w: a key of 1 to %d bytes, a positive limit and a window of at least 1s are required", ErrInvalid, maxOnceKey)
	}
	start := s.now().Truncate(window)
	pk := fmt.Sprintf("%s%s#%d", attemptPrefix, name, start.Unix())
	expr := "SET #expires_at = :exp ADD #attempts :one"
	cond := "attribute_not_exists(#attempts) OR #attempts < :limit"
	_, err = s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.Table),
		Key:                      key(pk),
		UpdateExpression:         aws.String(expr),
		ConditionExpression:      aws.String(cond),
		ExpressionAttributeNames: names(expr, cond),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":exp":   num(unixCeil(start.Add(window))),
			":one":   num(1),
			":limit": num(int64(limit)),
		},
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tokenstore: count attempt: %w", err)
	}
	return true, nil
}
