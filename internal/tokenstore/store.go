package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// DynamoDB is the part of the DynamoDB API the store uses. *dynamodb.Client satisfies it.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

const (
	// DefaultShards is the number of due_shard values when Store.Shards is zero.
	DefaultShards = 8

	// installAttempts bounds Install's read-then-conditional-write loop when it races another
	// writer of the same installation.
	installAttempts = 4
	// maxReason keeps LastFailure short: it is for operators, not for response bodies.
	maxReason = 200
)

// Sentinel errors. Every error the store returns wraps one of these when the caller can act on
// the outcome; test with errors.Is. The installation outcomes are the domain's errors
// (internal/installation), so code that branches on them need not import this adapter; the
// names here are the same values.
var (
	// ErrNotFound: no installation (or record) with that key exists.
	ErrNotFound = installation.ErrNotFound
	// ErrConflict: the installation changed since the caller read it (version mismatch).
	ErrConflict = installation.ErrConflict
	// ErrLeaseLost: the caller does not hold the lease: it expired and another owner took it
	// (or, for Release, RecordFailure and MarkNeedsReauth, nobody holds it).
	// errors.Is(ErrLeaseLost, ErrConflict) is true.
	ErrLeaseLost = installation.ErrLeaseLost
	// ErrLeaseHeld: another owner holds an unexpired lease.
	ErrLeaseHeld = installation.ErrLeaseHeld
	// ErrNotActive: the installation needs reauthorization or was uninstalled.
	ErrNotActive = installation.ErrNotActive
	// ErrTokenInClear: a token attribute stored in clear, refused (Store.RefusePlaintext).
	ErrTokenInClear = installation.ErrTokenInClear
	// ErrCodeClaimed: another caller claimed the authorization code first.
	ErrCodeClaimed = errors.New("tokenstore: authorization code already claimed")
	// ErrInvalid: an argument is missing or malformed; retrying will not help.
	ErrInvalid = errors.New("tokenstore: invalid argument")
)

// Store keeps installations and their tokens in one DynamoDB table (see the package
// documentation for the schema). Its methods are safe for concurrent use, across goroutines
// and across Lambda instances: every write is conditional.
type Store struct {
	// DB is the DynamoDB client.
	DB DynamoDB
	// Table is the table name (the TokensTable resource).
	Table string
	// Shards is how many due_shard values the refresh-due index spreads over, DefaultShards if
	// zero. A single value would put every installation's index entry under one partition key,
	// and every refresh rewrites that entry: a hot partition whose throttling also throttles
	// the table's writes. Only ever increase it: Due queries shards 0..Shards-1, and an item
	// moves to its new shard at its next write.
	Shards int
	// Now is the clock, time.Now if nil.
	Now func() time.Time
	// Cipher seals the access and refresh tokens on every write and opens them on the reads
	// that return them (Get, Lease, SaveRefreshed): *tokencrypt.Envelope under the template's
	// TokensKey. Items written before encryption hold plain strings, read as they are and
	// sealed at their next write. Nil stores plain strings: only for tests that do not
	// exercise encryption (internal/wire always sets one).
	Cipher Cipher
	// RefusePlaintext refuses a token attribute stored in clear (ErrTokenInClear) instead of
	// reading it: anyone who can write the table could otherwise plant a token the functions
	// would use. On in every deployment of this template (REFUSE_PLAINTEXT_TOKENS, parameter
	// RefusePlaintextTokens); a table from before encryption is sealed first with
	// SealPlaintext (pdctl tokens seal).
	RefusePlaintext bool

	pageSize int // Due's Query page size, maxPage if zero; tests set it small to page

	leased leasedItems // the items of the leases this Store took, until they end
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Store) shards() int {
	if s.Shards > 0 {
		return s.Shards
	}
	return DefaultShards
}

// Install stores a freshly exchanged installation: it creates the item, or re-installs over an
// existing one whatever its status. It uses in's ID, AccessToken, RefreshToken, APIDomain,
// Scopes, ExpiresAt and CodeHash; the result is active, its version one more than before (1 if
// new), its failure count zero and its lease cleared, and InstalledAt is kept from the first
// install. The write is conditional on the version it read; it retries a few times when
// another writer gets in between and then returns ErrConflict.
func (s *Store) Install(ctx context.Context, in Installation) (Installation, error) {
	id := in.ID
	if err := validateInstall(in); err != nil {
		return Installation{}, fmt.Errorf("tokenstore: install %s: %w", id, err)
	}
	for range installAttempts {
		old, err := s.get(ctx, id)
		found := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Installation{}, fmt.Errorf("tokenstore: install %s: %w", id, err)
		}
		now := s.now()
		it := instItem{
			PK:              instKey(id),
			CompanyID:       id.CompanyID,
			UserID:          id.UserID,
			Status:          string(StatusActive),
			Version:         old.Version + 1,
			APIDomain:       in.APIDomain,
			Scopes:          in.Scopes,
			AccessExpiresAt: unix(in.ExpiresAt),
			DueShard:        shardOf(id, s.shards()),
			CodeHash:        in.CodeHash,
			InstalledAt:     text(now),
			LastInstalledAt: now.Unix(),
			UpdatedAt:       text(now),
			// Installing is a use: the register-webhooks job follows at once.
			WarmUntil: unix(installation.UseMarkUntil(now)),
		}
		cond := "attribute_not_exists(#pk)"
		vals := map[string]types.AttributeValue(nil)
		if found {
			// Re-install: a whole new item (no lease, no failures, no stale attributes), but
			// only over the version just read.
			it.InstalledAt = text(old.InstalledAt)
			it.AlwaysWarm = old.AlwaysWarm // the operator's flag outlives re-installs
			cond = "#version = :v"
			vals = map[string]types.AttributeValue{":v": num(old.Version)}
		}
		it.RefreshDueAt = installation.NextRefresh(Installation{
			ExpiresAt: in.ExpiresAt, InstalledAt: fromText(it.InstalledAt),
			WarmUntil: fromUnix(it.WarmUntil), AlwaysWarm: it.AlwaysWarm,
		}).Unix()
		av, err := attributevalue.MarshalMap(it)
		if err != nil {
			return Installation{}, fmt.Errorf("tokenstore: install %s: encode: %w", id, err)
		}
		if av[attrAccessToken], err = s.sealToken(ctx, it.PK, in.AccessToken); err != nil {
			return Installation{}, fmt.Errorf("tokenstore: install %s: %w", id, err)
		}
		if av[attrRefreshToken], err = s.sealToken(ctx, it.PK, in.RefreshToken); err != nil {
			return Installation{}, fmt.Errorf("tokenstore: install %s: %w", id, err)
		}
		_, err = s.DB.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                 aws.String(s.Table),
			Item:                      av,
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  names(cond),
			ExpressionAttributeValues: vals,
		})
		if isConditionFailed(err) {
			continue // raced another writer: read again
		}
		if err != nil {
			return Installation{}, fmt.Errorf("tokenstore: install %s: %w", id, err)
		}
		stored, err := decodeInstallation(av)
		// The tokens just sealed are the caller's: no need (nor, for the callback, the right)
		// to decrypt them again.
		stored.AccessToken, stored.RefreshToken = in.AccessToken, in.RefreshToken
		return stored, err
	}
	return Installation{}, fmt.Errorf("tokenstore: install %s: %d attempts: %w", id, installAttempts, ErrConflict)
}

func validateInstall(in Installation) error {
	switch {
	case !in.ID.Valid():
		return fmt.Errorf("%w: company and user ids must be positive", ErrInvalid)
	case in.AccessToken == "" || in.RefreshToken == "":
		return fmt.Errorf("%w: access and refresh tokens are required", ErrInvalid)
	case in.ExpiresAt.IsZero():
		return fmt.Errorf("%w: access token expiry is required", ErrInvalid)
	case in.CodeHash != "" && !isCodeHash(in.CodeHash):
		return fmt.Errorf("%w: code hash must be a hex SHA-256", ErrInvalid)
	}
	return nil
}

// Get returns the installation with its tokens (opened with Cipher), read strongly
// consistently, or ErrNotFound. Describe reads the rest without the tokens.
func (s *Store) Get(ctx context.Context, id InstallationID) (Installation, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.Table),
		Key:            key(instKey(id)),
		ConsistentRead: aws.Bool(true),
	})
	switch {
	case err != nil:
		return Installation{}, fmt.Errorf("tokenstore: get %s: %w", id, err)
	case out.Item == nil:
		return Installation{}, fmt.Errorf("tokenstore: get %s: %w", id, ErrNotFound)
	}
	in, err := s.decode(ctx, out.Item)
	if err != nil {
		return Installation{}, fmt.Errorf("tokenstore: get %s: %w", id, err)
	}
	return in, nil
}

// Lease takes the installation's refresh lease for owner until now+ttl, so that one refresh
// runs at a time across all Lambda instances. It succeeds only while the installation is
// active and the lease is free, expired or already owner's (renewal). It returns the
// installation as it is after the lease was taken, so the caller can skip a refresh another
// owner has just finished. Errors: ErrLeaseHeld (another owner's lease is unexpired),
// ErrNotActive, ErrNotFound.
func (s *Store) Lease(ctx context.Context, id InstallationID, owner string, ttl time.Duration) (Installation, error) {
	if owner == "" || ttl <= 0 {
		return Installation{}, fmt.Errorf("tokenstore: lease %s: %w: owner and a positive ttl are required", id, ErrInvalid)
	}
	now := s.now()
	attrs, ok, err := s.update(ctx, instKey(id),
		"SET #lease_owner = :owner, #lease_until = :until, #version = #version + :one, #updated_at = :now_text",
		"#status = :active AND (attribute_not_exists(#lease_owner) OR #lease_owner = :owner OR #lease_until <= :now)",
		map[string]types.AttributeValue{
			":owner":    str(owner),
			":until":    num(unixCeil(now.Add(ttl))),
			":one":      num(1),
			":now_text": str(text(now)),
			":active":   str(string(StatusActive)),
			":now":      num(now.Unix()),
		})
	if err != nil {
		return Installation{}, fmt.Errorf("tokenstore: lease %s: %w", id, err)
	}
	if !ok {
		return Installation{}, fmt.Errorf("tokenstore: lease %s: %w", id, leaseFailure(attrs))
	}
	in, err := s.decode(ctx, attrs)
	if err != nil {
		// Leased but unreadable: the lease expires by itself.
		return Installation{}, fmt.Errorf("tokenstore: lease %s: %w", id, err)
	}
	s.leased.remember(instKey(id), owner, attrs)
	return in, nil
}

// leaseFailure explains a failed Lease from the item as it was (nil: absent).
func leaseFailure(old map[string]types.AttributeValue) error {
	if old == nil {
		return ErrNotFound
	}
	in, err := decodeInstallation(old)
	switch {
	case err != nil:
		return err
	case in.Status != StatusActive:
		return fmt.Errorf("%w (%s)", ErrNotActive, in.Status)
	default:
		return ErrLeaseHeld
	}
}

// SaveRefreshed stores the tokens a refresh returned and releases owner's lease. version is
// the Version Lease returned. Empty RefreshToken or APIDomain and nil Scopes keep the stored
// values; a non-zero tok.WarmUntil records a use. The refresh becomes due again at
// tok.NextRefresh (installation.RefreshDueAt(tok.ExpiresAt) when zero); the failure count
// resets to zero.
//
// The write is conditional on the version, on owner still holding the lease and on the
// installation being active. A lease that expired without anyone else writing is still good:
// the version proves nothing happened in between. Errors: ErrLeaseLost (another owner leased
// it since; also matches ErrConflict), ErrConflict (the version moved on), ErrNotActive
// (uninstalled or marked for reauthorization meanwhile: discard the tokens), ErrNotFound.
// Repeating a save that already landed (same access token, at version+1) succeeds.
//
// After a Lease by this Store for owner at version, the save is one conditional PutItem of the
// whole item (see leasedItems); otherwise one conditional UpdateItem. Either leaves the same
// item.
func (s *Store) SaveRefreshed(ctx context.Context, id InstallationID, owner string, version int64, tok Tokens) (Installation, error) {
	if owner == "" || tok.AccessToken == "" || tok.ExpiresAt.IsZero() {
		return Installation{}, fmt.Errorf("tokenstore: save refreshed %s: %w: owner, access token and expiry are required", id, ErrInvalid)
	}
	now := s.now()
	set := "SET #access_token = :access, #access_expires_at = :expires, #refresh_due_at = :due, #due_shard = :shard, " +
		"#failure_count = :zero, #refreshed_at = :now_text, #updated_at = :now_text, #version = #version + :one"
	due := tok.NextRefresh
	if due.IsZero() {
		due = installation.RefreshDueAt(tok.ExpiresAt)
	}
	pk := instKey(id)
	access, err := s.sealToken(ctx, pk, tok.AccessToken)
	if err != nil {
		return Installation{}, fmt.Errorf("tokenstore: save refreshed %s: %w", id, err)
	}
	vals := map[string]types.AttributeValue{
		":access":   access,
		":expires":  num(unix(tok.ExpiresAt)),
		":due":      num(due.Unix()),
		":shard":    str(shardOf(id, s.shards())),
		":zero":     num(0),
		":now_text": str(text(now)),
		":one":      num(1),
		":v":        num(version),
		":owner":    str(owner),
		":active":   str(string(StatusActive)),
	}
	if tok.RefreshToken != "" {
		set += ", #refresh_token = :refresh"
		if vals[":refresh"], err = s.sealToken(ctx, pk, tok.RefreshToken); err != nil {
			return Installation{}, fmt.Errorf("tokenstore: save refreshed %s: %w", id, err)
		}
	}
	if tok.APIDomain != "" {
		set += ", #api_domain = :domain"
		vals[":domain"] = str(tok.APIDomain)
	}
	if tok.Scopes != nil {
		set += ", #scopes = :scopes"
		vals[":scopes"] = list(tok.Scopes)
	}
	if !tok.WarmUntil.IsZero() {
		set += ", #warm_until = :warm"
		vals[":warm"] = num(unix(tok.WarmUntil))
	}
	var (
		attrs map[string]types.AttributeValue
		ok    bool
	)
	if leased := s.leased.take(pk, owner); leased != nil && leasedAt(leased, owner, version) {
		// The whole item as this lease read it, refreshed: one conditional put (see leasedItems).
		const cond = "#version = :v AND #lease_owner = :owner AND #status = :active"
		item := refreshedItem(leased, vals, version)
		attrs, ok, err = s.put(ctx, item, cond, map[string]types.AttributeValue{":v": vals[":v"], ":owner": vals[":owner"], ":active": vals[":active"]})
		if err == nil && ok {
			saved, err := decodeInstallation(item)
			if err != nil {
				return Installation{}, fmt.Errorf("tokenstore: save refreshed %s: saved, but %w", id, err)
			}
			// The tokens just sealed are the caller's: no need to open them again.
			saved.AccessToken, saved.RefreshToken = tok.AccessToken, tok.RefreshToken
			if tok.RefreshToken == "" {
				if saved.RefreshToken, err = s.openToken(ctx, pk, item[attrRefreshToken]); err != nil {
					return Installation{}, fmt.Errorf("tokenstore: save refreshed %s: saved, but refresh token: %w", id, err)
				}
			}
			return saved, nil
		}
	} else {
		attrs, ok, err = s.update(ctx, pk,
			set+" REMOVE #lease_owner, #lease_until, #last_failure",
			"#version = :v AND #lease_owner = :owner AND #status = :active",
			vals)
	}
	if err != nil {
		return Installation{}, fmt.Errorf("tokenstore: save refreshed %s: %w", id, err)
	}
	if !ok {
		// The SDK retries a write whose answer was lost; if the first attempt landed, the
		// condition now fails against our own write. Access tokens are unique per issue, so
		// the stored one being ours at version+1 proves the save happened.
		if attrs != nil {
			if in, err := s.decode(ctx, attrs); err == nil &&
				in.AccessToken == tok.AccessToken && in.Version == version+1 && in.Status == StatusActive {
				return in, nil
			}
		}
		return Installation{}, fmt.Errorf("tokenstore: save refreshed %s: %w", id, ownerFailure(attrs, owner, true))
	}
	// Opening what was just sealed costs no KMS request (the cipher keeps its data key).
	saved, err := s.decode(ctx, attrs)
	if err != nil {
		return Installation{}, fmt.Errorf("tokenstore: save refreshed %s: saved, but %w", id, err)
	}
	return saved, nil
}

// ownerFailure explains a failed write that required owner's lease on an active installation
// and, when versioned, a matching version.
func ownerFailure(old map[string]types.AttributeValue, owner string, versioned bool) error {
	if old == nil {
		return ErrNotFound
	}
	in, err := decodeInstallation(old)
	switch {
	case err != nil:
		return err
	case in.Status != StatusActive:
		return fmt.Errorf("%w (%s)", ErrNotActive, in.Status)
	case in.LeaseOwner != "" && in.LeaseOwner != owner:
		return ErrLeaseLost
	case in.LeaseOwner == "" && !versioned:
		return ErrLeaseLost
	case in.LeaseOwner == "":
		// Released: by a save of the same owner at this version, or by another owner that
		// leased and finished. Either way the version has moved on.
		return fmt.Errorf("%w: lease no longer held, now at version %d", ErrConflict, in.Version)
	default:
		return fmt.Errorf("%w: now at version %d", ErrConflict, in.Version)
	}
}

// Release drops owner's lease without changing the tokens, for a caller that leased and found
// nothing to do. ErrLeaseLost if owner does not hold the lease; ErrNotFound.
func (s *Store) Release(ctx context.Context, id InstallationID, owner string) error {
	if owner == "" {
		return fmt.Errorf("tokenstore: release %s: %w: owner is required", id, ErrInvalid)
	}
	s.leased.take(instKey(id), owner) // the lease ends here, whatever the outcome
	now := s.now()
	attrs, ok, err := s.update(ctx, instKey(id),
		"SET #version = #version + :one, #updated_at = :now_text REMOVE #lease_owner, #lease_until",
		"#lease_owner = :owner",
		map[string]types.AttributeValue{":one": num(1), ":now_text": str(text(now)), ":owner": str(owner)})
	if err != nil {
		return fmt.Errorf("tokenstore: release %s: %w", id, err)
	}
	if !ok {
		if attrs == nil {
			return fmt.Errorf("tokenstore: release %s: %w", id, ErrNotFound)
		}
		return fmt.Errorf("tokenstore: release %s: %w", id, ErrLeaseLost)
	}
	return nil
}

// RecordFailure notes a failed refresh that may succeed later: the failure count goes up by
// one, reason (a pderrors reason or short text, never a token; cut to 200 bytes) is kept as
// LastFailure, the refresh becomes due at retryAt, and owner's lease is released. Errors:
// ErrLeaseLost, ErrNotActive, ErrNotFound.
func (s *Store) RecordFailure(ctx context.Context, id InstallationID, owner string, reason string, retryAt time.Time) error {
	if owner == "" || retryAt.IsZero() {
		return fmt.Errorf("tokenstore: record failure %s: %w: owner and retry time are required", id, ErrInvalid)
	}
	s.leased.take(instKey(id), owner) // the lease ends here, whatever the outcome
	now := s.now()
	attrs, ok, err := s.update(ctx, instKey(id),
		"SET #failure_count = #failure_count + :one, #last_failure = :reason, #refresh_due_at = :due, #due_shard = :shard, "+
			"#version = #version + :one, #updated_at = :now_text REMOVE #lease_owner, #lease_until",
		"#lease_owner = :owner AND #status = :active",
		map[string]types.AttributeValue{
			":one":      num(1),
			":reason":   str(shorten(reason)),
			":due":      num(retryAt.Unix()),
			":shard":    str(shardOf(id, s.shards())),
			":now_text": str(text(now)),
			":owner":    str(owner),
			":active":   str(string(StatusActive)),
		})
	if err != nil {
		return fmt.Errorf("tokenstore: record failure %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("tokenstore: record failure %s: %w", id, ownerFailure(attrs, owner, false))
	}
	return nil
}

// MarkNeedsReauth records that Pipedrive rejected the refresh token for good: the status
// becomes needs_reauthorization, the access and refresh tokens are deleted (they are dead, and
// a dead credential kept is still a credential to leak), the installation leaves the
// refresh-due index (so it is not retried), the failure count goes up and owner's lease is
// released. The user must install again. Errors: ErrLeaseLost, ErrNotActive, ErrNotFound.
func (s *Store) MarkNeedsReauth(ctx context.Context, id InstallationID, owner string, reason string) error {
	if owner == "" {
		return fmt.Errorf("tokenstore: mark needs reauthorization %s: %w: owner is required", id, ErrInvalid)
	}
	s.leased.take(instKey(id), owner) // the lease ends here, whatever the outcome
	now := s.now()
	attrs, ok, err := s.update(ctx, instKey(id),
		"SET #status = :needs, #failure_count = #failure_count + :one, #last_failure = :reason, "+
			"#version = #version + :one, #updated_at = :now_text "+
			"REMOVE #access_token, #refresh_token, #due_shard, #refresh_due_at, #lease_owner, #lease_until",
		"#lease_owner = :owner AND #status = :active",
		map[string]types.AttributeValue{
			":needs":    str(string(StatusNeedsReauth)),
			":one":      num(1),
			":reason":   str(shorten(reason)),
			":now_text": str(text(now)),
			":owner":    str(owner),
			":active":   str(string(StatusActive)),
		})
	if err != nil {
		return fmt.Errorf("tokenstore: mark needs reauthorization %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("tokenstore: mark needs reauthorization %s: %w", id, ownerFailure(attrs, owner, false))
	}
	return nil
}

// Uninstall marks the installation uninstalled and deletes its tokens, its index entry and any
// lease, whoever holds it (an in-flight refresh then fails with ErrNotActive and its tokens
// are discarded). The item itself stays, with its ids and history. Uninstalling again is not
// an error and writes nothing. It returns the installation as it now is; ErrNotFound if it was
// never installed.
func (s *Store) Uninstall(ctx context.Context, id InstallationID) (Installation, error) {
	now := s.now()
	attrs, ok, err := s.update(ctx, instKey(id),
		"SET #status = :uninstalled, #version = #version + :one, #updated_at = :now_text "+
			"REMOVE #access_token, #refresh_token, #due_shard, #refresh_due_at, #lease_owner, #lease_until",
		"attribute_exists(#pk) AND #status <> :uninstalled",
		map[string]types.AttributeValue{
			":uninstalled": str(string(StatusUninstalled)),
			":one":         num(1),
			":now_text":    str(text(now)),
		})
	if err != nil {
		return Installation{}, fmt.Errorf("tokenstore: uninstall %s: %w", id, err)
	}
	if !ok && attrs == nil {
		return Installation{}, fmt.Errorf("tokenstore: uninstall %s: %w", id, ErrNotFound)
	}
	// Either just written, or already uninstalled (the condition's other half).
	return decodeInstallation(attrs)
}

// update runs a conditional UpdateItem. ok reports whether the condition held; attrs is the
// item after the update when it did (ALL_NEW), and the item as it was when it did not (ALL_OLD
// on condition failure; nil if there was no item).
func (s *Store) update(ctx context.Context, pk, expr, cond string, vals map[string]types.AttributeValue) (attrs map[string]types.AttributeValue, ok bool, err error) {
	out, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.Table),
		Key:                                 key(pk),
		UpdateExpression:                    aws.String(expr),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            names(expr, cond),
		ExpressionAttributeValues:           vals,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return out.Attributes, true, nil
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// unixCeil rounds up to whole seconds, so a stored lease is never shorter than asked.
func unixCeil(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

// shorten cuts s to maxReason bytes without splitting a UTF-8 sequence.
func shorten(s string) string {
	if len(s) <= maxReason {
		return s
	}
	i := maxReason
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
