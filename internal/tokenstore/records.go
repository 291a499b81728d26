package tokenstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
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

// CodeState is the progress of one authorization code's exchange.
type CodeState string

const (
	// CodeExchanging: a caller claimed the code and is exchanging it for tokens.
	CodeExchanging CodeState = "exchanging"
	// CodeDone: the exchange succeeded and the installation was stored.
	CodeDone CodeState = "done"
)

// CodeClaim records that an authorization code is being, or has been, exchanged, so a callback
// delivered twice (a reload, a retried request) exchanges the single-use code once.
type CodeClaim struct {
	CodeHash string
	State    CodeState
	// ID is the installation the code produced; set when State is CodeDone.
	ID        InstallationID
	ClaimedAt time.Time
	// ExpiresAt is when the claim lapses (the table's TTL deletes it some time later).
	ExpiresAt time.Time
}

type codeItem struct {
	PK          string `dynamodbav:"pk"`
	State       string `dynamodbav:"state"`
	CompanyID   int64  `dynamodbav:"company_id,omitempty"`
	UserID      int64  `dynamodbav:"user_id,omitempty"`
	ExpiresAt   int64  `dynamodbav:"expires_at"`
	ClaimedAt   string `dynamodbav:"claimed_at,omitempty"`
	CompletedAt string `dynamodbav:"completed_at,omitempty"`
}

func decodeClaim(av map[string]types.AttributeValue) (CodeClaim, error) {
	var it codeItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return CodeClaim{}, fmt.Errorf("decode code claim: %w", err)
	}
	return CodeClaim{
		CodeHash:  strings.TrimPrefix(it.PK, codePrefix),
		State:     CodeState(it.State),
		ID:        InstallationID{CompanyID: it.CompanyID, UserID: it.UserID},
		ClaimedAt: fromText(it.ClaimedAt),
		ExpiresAt: fromUnix(it.ExpiresAt),
	}, nil
}

// ClaimCode claims the authorization code whose HashCode is codeHash for ttl. The first caller
// wins and gets the new claim (state exchanging); a later caller gets the existing claim
// (exchanging, or done with the installation's ID) and ErrCodeClaimed. A claim past its
// ExpiresAt counts as absent even before DynamoDB's TTL deletes it.
func (s *Store) ClaimCode(ctx context.Context, codeHash string, ttl time.Duration) (CodeClaim, error) {
	if !isCodeHash(codeHash) || ttl <= 0 {
		return CodeClaim{}, fmt.Errorf("tokenstore: claim code: %w: a hex SHA-256 and a positive ttl are required", ErrInvalid)
	}
	now := s.now()
	attrs, ok, err := s.putUnlessLive(ctx, codeItem{
		PK:        codePrefix + codeHash,
		State:     string(CodeExchanging),
		ExpiresAt: unixCeil(now.Add(ttl)),
		ClaimedAt: text(now),
	}, now, "", nil)
	switch {
	case err != nil:
		return CodeClaim{}, fmt.Errorf("tokenstore: claim code: %w", err)
	case ok:
		return decodeClaim(attrs)
	}
	if claim, derr := decodeClaim(attrs); derr == nil && attrs != nil {
		return claim, fmt.Errorf("tokenstore: claim code: %w (%s)", ErrCodeClaimed, claim.State)
	}
	return CodeClaim{CodeHash: codeHash}, fmt.Errorf("tokenstore: claim code: %w", ErrCodeClaimed)
}

// CompleteCode records that the claimed code produced installation id, so a repeated callback
// can show success instead of exchanging again. Completing again with the same id is not an
// error. ErrNotFound if there is no claim; ErrConflict if it was completed for another id.
func (s *Store) CompleteCode(ctx context.Context, codeHash string, id InstallationID) error {
	if !isCodeHash(codeHash) || !id.Valid() {
		return fmt.Errorf("tokenstore: complete code: %w: a hex SHA-256 and an installation id are required", ErrInvalid)
	}
	attrs, ok, err := s.update(ctx, codePrefix+codeHash,
		"SET #state = :done, #company_id = :company, #user_id = :user, #completed_at = :now_text",
		"#state = :exchanging",
		map[string]types.AttributeValue{
			":done":       str(string(CodeDone)),
			":company":    num(id.CompanyID),
			":user":       num(id.UserID),
			":now_text":   str(text(s.now())),
			":exchanging": str(string(CodeExchanging)),
		})
	if err != nil {
		return fmt.Errorf("tokenstore: complete code for %s: %w", id, err)
	}
	if ok {
		return nil
	}
	if attrs == nil {
		return fmt.Errorf("tokenstore: complete code for %s: %w", id, ErrNotFound)
	}
	claim, err := decodeClaim(attrs)
	if err != nil {
		return fmt.Errorf("tokenstore: complete code for %s: %w", id, err)
	}
	if claim.State == CodeDone && claim.ID == id {
		return nil
	}
	return fmt.Errorf("tokenstore: complete code for %s: %w: claim is %s for %s", id, ErrConflict, claim.State, claim.ID)
}

// ReleaseCode deletes an exchanging claim after a failed exchange, so the user can retry with
// the same code. A missing claim is not an error; a done claim is kept and ErrConflict
// returned, since that code has already produced an installation.
func (s *Store) ReleaseCode(ctx context.Context, codeHash string) error {
	if !isCodeHash(codeHash) {
		return fmt.Errorf("tokenstore: release code: %w: a hex SHA-256 is required", ErrInvalid)
	}
	kept, err := s.deleteIf(ctx, codePrefix+codeHash, "#state = :exchanging",
		map[string]types.AttributeValue{":exchanging": str(string(CodeExchanging))})
	switch {
	case err != nil:
		return fmt.Errorf("tokenstore: release code: %w", err)
	case kept:
		return fmt.Errorf("tokenstore: release code: %w: the claim is done", ErrConflict)
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
	_, err = s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.Table),
		Item:                      av,
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names(cond),
		ExpressionAttributeValues: values,
		// The live record comes back with the refusal, so the caller learns its state in one call.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if got, ok := ccf.Item[attrNonce].(*types.AttributeValueMemberS); ok && got.Value == nonce {
			return av, true, nil // our own write, landed by an earlier attempt of this call
		}
		return ccf.Item, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return av, true, nil
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
