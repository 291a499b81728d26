package tokenstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Scanner is the DynamoDB call Inventory needs; *dynamodb.Client satisfies it.
type Scanner interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Inventory lists installations for operators. It scans the table, so it is for the
// on-call command line, never for a function's hot path (the refresher uses Store.Due). It
// reads every attribute but the tokens (ProjectionExpression), so the installations it returns
// have no AccessToken or RefreshToken.
type Inventory struct {
	DB    Scanner
	Table string
}

// ErrBadCursor is returned by List for a cursor it did not issue.
var ErrBadCursor = errors.New("tokenstore: malformed list cursor")

// List returns up to limit installations (all statuses when status is ""), and a cursor for
// the next page ("" when there is none). Pass "" as cursor for the first page. Order is the
// table's, not meaningful.
func (v *Inventory) List(ctx context.Context, status Status, limit int, cursor string) ([]Installation, string, error) {
	if limit <= 0 {
		limit = 100
	}
	filter := "begins_with(#pk, :inst)"
	// Never the tokens: an operator's list neither reads nor may decrypt them.
	proj, names := metaProjection()
	vals := map[string]types.AttributeValue{":inst": str(instPrefix)}
	if status != "" {
		filter += " AND #status = :status"
		names["#status"] = attrStatus
		vals[":status"] = str(string(status))
	}
	var start map[string]types.AttributeValue
	if cursor != "" {
		pk, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(pk) == 0 {
			return nil, "", ErrBadCursor
		}
		start = key(string(pk))
	}
	var out []Installation
	for {
		page, err := v.DB.Scan(ctx, &dynamodb.ScanInput{
			TableName:                 aws.String(v.Table),
			FilterExpression:          aws.String(filter),
			ProjectionExpression:      aws.String(proj),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: vals,
			ExclusiveStartKey:         start,
			// The filter applies after the page is read: read a little more than asked.
			Limit: aws.Int32(int32(min(limit*2, 1000))),
		})
		if err != nil {
			return nil, "", fmt.Errorf("tokenstore: list: %w", err)
		}
		for _, item := range page.Items {
			inst, err := decodeInstallation(item)
			if err != nil {
				return nil, "", fmt.Errorf("tokenstore: list: %w", err)
			}
			out = append(out, inst)
			if len(out) == limit {
				// Resume after this item, whatever else the page held.
				return out, base64.RawURLEncoding.EncodeToString([]byte(instKey(inst.ID))), nil
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, "", nil
		}
		start = page.LastEvaluatedKey
	}
}
