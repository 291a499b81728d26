package tokenstore

import (
	"context"
	"errors"
	"maps"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// maxLeased bounds how many leased items a Store remembers (the refreshes in flight in one
// process; more only if writes that end leases keep failing). Past it, Lease remembers
// nothing and SaveRefreshed falls back to its UpdateItem.
const maxLeased = 4096

// leasedItems remembers, per lease (item key and owner), the whole item Lease wrote and read
// back, so that SaveRefreshed can write the refreshed item whole: one conditional PutItem
// instead of an UpdateItem of a dozen attributes returning the item. Both cost one request
// and the same write units in DynamoDB; the put needs no update expression evaluated and no
// item sent back (moto spends most of a refresh's time on those), and the saved installation
// is built here, so the tokens just sealed are not opened again. Every installation writer
// bumps the version and the put is conditional on the leased version, so the put cannot
// overwrite a write it has not seen. The zero value is ready; it is safe for concurrent use.
type leasedItems struct {
	mu sync.Mutex
	m  map[string]map[string]types.AttributeValue
}

func leasedKey(pk, owner string) string { return pk + "\n" + owner }

// remember keeps attrs (the item as owner's Lease left it) until the lease ends.
func (l *leasedItems) remember(pk, owner string, attrs map[string]types.AttributeValue) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]map[string]types.AttributeValue{}
	}
	if len(l.m) >= maxLeased {
		return
	}
	l.m[leasedKey(pk, owner)] = attrs
}

// take returns and forgets the item owner leased; nil when none is remembered.
func (l *leasedItems) take(pk, owner string) map[string]types.AttributeValue {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := leasedKey(pk, owner)
	attrs := l.m[k]
	delete(l.m, k)
	return attrs
}

// leasedAt reports whether leased is the item owner's lease wrote at version.
func leasedAt(leased map[string]types.AttributeValue, owner string, version int64) bool {
	in, err := decodeInstallation(leased)
	return err == nil && in.Version == version && in.LeaseOwner == owner
}

// refreshedItem is the item SaveRefreshed's UpdateItem would leave, built from leased (the item
// as owner's Lease returned it) with the refreshed values in vals (its ":access", ":expires",
// ":due", ":shard", ":zero", ":now_text" and the optional ":refresh", ":domain", ":scopes",
// ":warm") and the version after version: the lease and the last failure removed.
func refreshedItem(leased, vals map[string]types.AttributeValue, version int64) map[string]types.AttributeValue {
	item := maps.Clone(leased)
	item[attrAccessToken] = vals[":access"]
	item["access_expires_at"] = vals[":expires"]
	item[attrRefreshDueAt] = vals[":due"]
	item[attrDueShard] = vals[":shard"]
	item["failure_count"] = vals[":zero"]
	item["refreshed_at"] = vals[":now_text"]
	item["updated_at"] = vals[":now_text"]
	item[attrVersion] = num(version + 1)
	for attr, v := range map[string]string{attrRefreshToken: ":refresh", "api_domain": ":domain", "scopes": ":scopes", "warm_until": ":warm"} {
		if av, ok := vals[v]; ok {
			item[attr] = av
		}
	}
	delete(item, attrLeaseOwner)
	delete(item, attrLeaseUntil)
	delete(item, "last_failure")
	return item
}

// put runs a conditional PutItem of item. ok reports whether the condition held; when it did
// not, old is the item as it was (nil if there was none).
func (s *Store) put(ctx context.Context, item map[string]types.AttributeValue, cond string, vals map[string]types.AttributeValue) (old map[string]types.AttributeValue, ok bool, err error) {
	_, err = s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.Table),
		Item:                                item,
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            names(cond),
		ExpressionAttributeValues:           vals,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return nil, true, nil
}
