package tokenstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// maxOnceKey keeps Once keys well inside DynamoDB's 2048-byte partition key limit.
const maxOnceKey = 1024

// HashCode returns the lowercase hex SHA-256 of an authorization code: the only form of a
// code the store accepts, so a code is never stored or logged.
func HashCode(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// isCodeHash reports whether s looks like HashCode's output; anything else (a raw code, say)
// is refused.
func isCodeHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CodeLease is how long a code claim's lease lasts: longer than any callback runs (the
// function's timeout is 15 s), so an in-progress code claim this old belongs to a request that
// died, and ClaimCode takes it over (WorkClaim.TookOver).
const CodeLease = time.Minute

// ClaimCode claims the exchange of the authorization code whose HashCode is codeHash. Code
// claims follow the work-claim protocol (see WorkClaim and ClaimWork) under pk "code#<hash>":
// the claim is in progress for a fresh random owner (returned in WorkClaim.Owner; pass it to
// CompleteCode, RetireCode or ReleaseCode) with a lease of CodeLease, and the record is kept
// until now+ttl, which must be at least CodeLease. The first caller wins; a claim whose lease
// lapsed is taken over (TookOver set); every other caller gets the existing claim (in progress,
// or done with the installation's ID) and ErrWorkClaimed. A claim past its ExpiresAt counts as
// absent even before DynamoDB's TTL deletes it.
func (s *Store) ClaimCode(ctx context.Context, codeHash string, ttl time.Duration) (WorkClaim, error) {
	if !isCodeHash(codeHash) || ttl < CodeLease {
		return WorkClaim{}, fmt.Errorf("tokenstore: claim code: %w: a hex SHA-256 and a ttl of at least %s are required", ErrInvalid, CodeLease)
	}
	c, err := s.claim(ctx, codePrefix, codeHash, rand.Text(), CodeLease, ttl)
	if err != nil {
		return c, fmt.Errorf("tokenstore: claim code: %w", err)
	}
	return c, nil
}

// CompleteCode marks owner's claim on the code done with the installation id it produced and
// keeps it until now+ttl, so a repeated callback can show success instead of exchanging again.
// Completing again as the same owner with the same id is not an error. ErrNotFound if there
// is no claim; ErrLeaseLost (which matches ErrConflict) if another owner holds or completed it.
func (s *Store) CompleteCode(ctx context.Context, codeHash, owner string, id InstallationID, ttl time.Duration) error {
	if !isCodeHash(codeHash) || owner == "" || !id.Valid() || ttl <= 0 {
		return fmt.Errorf("tokenstore: complete code: %w: a hex SHA-256, an owner, an installation id and a positive ttl are required", ErrInvalid)
	}
	if err := s.complete(ctx, codePrefix, codeHash, owner, ttl, id); err != nil {
		return fmt.Errorf("tokenstore: complete code for %s: %w", id, err)
	}
	return nil
}

// RetireCode marks owner's claim on the code done without an installation and keeps it until
// now+ttl: the code must not be exchanged (again), because an earlier owner may have spent it
// before dying. Claims on it get ErrWorkClaimed with State done and a zero ID. Errors as for
// CompleteCode.
func (s *Store) RetireCode(ctx context.Context, codeHash, owner string, ttl time.Duration) error {
	if !isCodeHash(codeHash) || owner == "" || ttl <= 0 {
		return fmt.Errorf("tokenstore: retire code: %w: a hex SHA-256, an owner and a positive ttl are required", ErrInvalid)
	}
	if err := s.complete(ctx, codePrefix, codeHash, owner, ttl, InstallationID{}); err != nil {
		return fmt.Errorf("tokenstore: retire code: %w", err)
	}
	return nil
}

// ReleaseCode deletes owner's in-progress claim after a failed exchange, so the user can retry
// with the same code at once. A missing claim is not an error; a done claim (that code already
// produced an installation) or one another owner holds is kept and ErrLeaseLost returned.
func (s *Store) ReleaseCode(ctx context.Context, codeHash, owner string) error {
	if !isCodeHash(codeHash) || owner == "" {
		return fmt.Errorf("tokenstore: release code: %w: a hex SHA-256 and an owner are required", ErrInvalid)
	}
	if err := s.release(ctx, codePrefix, codeHash, owner); err != nil {
		return fmt.Errorf("tokenstore: release code: %w", err)
	}
	return nil
}

// Once reports whether this is the first call with key within ttl: true records the key until
// now+ttl, false means a live record exists. Use it for idempotency and alert de-duplication.
// A record past its expiry counts as absent: DynamoDB's TTL deletes items up to days late.
func (s *Store) Once(ctx context.Context, key string, ttl time.Duration) (first bool, err error) {
	if key == "" || len(key) > maxOnceKey || ttl <= 0 {
		return false, fmt.Errorf("tokenstore: once: %w: a key of 1 to %d bytes and a positive ttl are required", ErrInvalid, maxOnceKey)
	}
	now := s.now()
	_, first, err = s.putUnlessLive(ctx, struct {
		PK        string `dynamodbav:"pk"`
		ExpiresAt int64  `dynamodbav:"expires_at"`
		CreatedAt string `dynamodbav:"created_at"`
	}{oncePrefix + key, unixCeil(now.Add(ttl)), text(now)}, now, "", nil)
	if err != nil {
		return false, fmt.Errorf("tokenstore: once: %w", err)
	}
	return first, nil
}

// putUnlessLive puts item, a short-lived record, unless a live record holds its key: one that
// has not reached its expires_at and does not meet takeOver, a condition under which an
// unexpired record may be replaced all the same (a lapsed lease, say; "" for none), whose
// placeholders other than :now are in vals. ok reports whether item was put; attrs is item as
// stored when it was, and the live record when it was not (nil if there was none to return).
func (s *Store) putUnlessLive(ctx context.Context, item any, now time.Time, takeOver string, vals map[string]types.AttributeValue) (attrs map[string]types.AttributeValue, ok bool, err error) {
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return nil, false, fmt.Errorf("encode: %w", err)
	}
	// A nonce per call tells our own earlier attempt from another writer's record: the SDK
	// retries a put whose answer was lost (a 500, a reset connection), and that retry must
	// not report "already there" for the record it wrote itself.
	nonce := rand.Text()
	av[attrNonce] = str(nonce)
	cond := "attribute_not_exists(#pk) OR #expires_at <= :now"
	if takeOver != "" {
		cond += " OR (" + takeOver + ")"
	}
	values := map[string]types.AttributeValue{":now": num(now.Unix())}
	maps.Copy(values, vals)
	// The live record comes back with the refusal, so the caller learns its state in one call.
	live, ok, err := s.put(ctx, av, cond, values)
	switch {
	case err != nil:
		return nil, false, err
	case ok:
		return av, true, nil
	}
	if got, mine := live[attrNonce].(*types.AttributeValueMemberS); mine && got.Value == nonce {
		return av, true, nil // our own write, landed by an earlier attempt of this call
	}
	return live, false, nil
}

// attrNonce marks which call wrote a short-lived record (see putUnlessLive).
const attrNonce = "nonce"

// deleteIf deletes the record at pk if it meets cond, whose placeholders are in vals. kept
// reports a record that exists but does not meet cond, and so stays; a missing record is
// neither kept nor an error.
func (s *Store) deleteIf(ctx context.Context, pk, cond string, vals map[string]types.AttributeValue) (kept bool, err error) {
	_, err = s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                           aws.String(s.Table),
		Key:                                 key(pk),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            names(cond),
		ExpressionAttributeValues:           vals,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item != nil, nil
	}
	return false, err
}
