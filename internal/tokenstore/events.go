package tokenstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Outcomes of AcceptEvent other than acceptance; test with errors.Is.
var (
	// ErrEventSeen: the event was accepted before (Pipedrive retried the delivery, or sent it
	// to two webhooks) and its record has not expired.
	ErrEventSeen = errors.New("tokenstore: webhook event already accepted")
	// ErrEventNotInstalled: no active installation for the event (never installed,
	// uninstalled, or waiting for reauthorization). Detail in EventRefusal.Status.
	ErrEventNotInstalled = errors.New("tokenstore: no active installation for the webhook event")
	// ErrEventPending: another delivery of the event holds a live lease (accepted, its send not
	// confirmed yet): answer with an error so Pipedrive tries again after the lease.
	ErrEventPending = errors.New("tokenstore: webhook event is being accepted by another delivery")
	// ErrWebhookUnknown: no owner is recorded for the webhook id.
	ErrWebhookUnknown = errors.New("tokenstore: webhook id not recorded")
)

// The states of an event record (attribute "state"): pending from AcceptEvent until
// ConfirmEvent (or its lease ends and another delivery takes it over), queued after. A record
// without a state (written before states existed) counts as queued.
const (
	eventPending = "pending"
	eventQueued  = "queued"
	attrLease    = "lease_until" // Unix milliseconds
)

// EventReceipt is an accepted event's record: ForgetEvent takes it back.
type EventReceipt struct {
	Key   string
	nonce string
}

// EventRefusal is the error AcceptEvent returns for an event it did not accept. It wraps
// ErrEventSeen or ErrEventNotInstalled.
type EventRefusal struct {
	Err error
	// Status is the installation's status when it exists but is not active; "" when unknown.
	Status Status
}

func (e *EventRefusal) Error() string {
	if e.Status != "" {
		return e.Err.Error() + " (status " + string(e.Status) + ")"
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *EventRefusal) Unwrap() error { return e.Err }

// AcceptEvent records that the webhook event key (webhook.Event.Key) of installation id is being
// handed on, in ONE DynamoDB request: a transaction that checks the installation is active and
// puts the event's record, "pending" for lease, unless a live record exists. The caller then
// queues the event and calls ConfirmEvent (the record becomes "queued" and lives for ttl) or,
// when queuing failed, ForgetEvent. So no outcome loses the event: a delivery that finds the
// record queued is refused with ErrEventSeen; one that finds it pending with a live lease with
// ErrEventPending (answer an error: Pipedrive retries); one that finds a pending record whose
// lease ended (its receiver died, or its answer was lost for good) takes it over. An event for
// an unknown or inactive installation is refused with ErrEventNotInstalled. Refusals are
// *EventRefusal. An SDK retry of a transaction whose answer was lost recognises its own record
// (nonce). The lease must outlast the accepting invocation (its deadline), so that two
// deliveries never send at once and the taker-over's send is the only one left.
func (s *Store) AcceptEvent(ctx context.Context, id InstallationID, eventKey string, lease, ttl time.Duration) (EventReceipt, error) {
	if !id.Valid() || eventKey == "" || len(eventKey) > maxOnceKey || ttl <= 0 || lease <= 0 {
		return EventReceipt{}, fmt.Errorf("tokenstore: accept event: %w: a valid installation, a key of 1 to %d bytes, a positive lease and ttl are required", ErrInvalid, maxOnceKey)
	}
	now := s.now()
	nonce := rand.Text()
	pk := oncePrefix + eventKey
	putCond := "attribute_not_exists(#pk) OR #expires_at <= :now OR (#state = :pending AND #lease_until <= :now_ms)"
	checkCond := "#status = :active"
	_, err := s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{
			TableName:                           aws.String(s.Table),
			Key:                                 key(instKey(id)),
			ConditionExpression:                 aws.String(checkCond),
			ExpressionAttributeNames:            names(checkCond),
			ExpressionAttributeValues:           map[string]types.AttributeValue{":active": str(string(StatusActive))},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}},
		{Put: &types.Put{
			TableName: aws.String(s.Table),
			Item: map[string]types.AttributeValue{
				attrPK:        str(pk),
				attrExpiresAt: num(unixCeil(now.Add(ttl))),
				"created_at":  str(text(now)),
				attrNonce:     str(nonce),
				attrState:     str(eventPending),
				attrLease:     num(now.Add(lease).UnixMilli()),
			},
			ConditionExpression:      aws.String(putCond),
			ExpressionAttributeNames: names(putCond),
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(now.Unix()), ":now_ms": num(now.UnixMilli()),
				":pending": str(eventPending)},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}},
	}})
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) && len(canceled.CancellationReasons) == 2 {
		inst, rec := canceled.CancellationReasons[0], canceled.CancellationReasons[1]
		if code(inst) == "ConditionalCheckFailed" {
			refusal := &EventRefusal{Err: ErrEventNotInstalled}
			if st, ok := inst.Item[attrStatus].(*types.AttributeValueMemberS); ok {
				refusal.Status = Status(st.Value)
			}
			return EventReceipt{}, refusal
		}
		if code(rec) == "ConditionalCheckFailed" {
			if got, ok := rec.Item[attrNonce].(*types.AttributeValueMemberS); ok && got.Value == nonce {
				return EventReceipt{Key: eventKey, nonce: nonce}, nil // our own earlier attempt landed
			}
			if st, ok := rec.Item[attrState].(*types.AttributeValueMemberS); ok && st.Value == eventPending {
				return EventReceipt{}, &EventRefusal{Err: ErrEventPending}
			}
			return EventReceipt{}, &EventRefusal{Err: ErrEventSeen}
		}
	}
	if err != nil {
		return EventReceipt{}, fmt.Errorf("tokenstore: accept event: %w", err)
	}
	return EventReceipt{Key: eventKey, nonce: nonce}, nil
}

// ConfirmEvent marks an accepted event's record queued, to live for ttl: every later delivery
// of the event is then refused with ErrEventSeen. It changes only the record r wrote (one
// taken over after its lease stays as it is).
func (s *Store) ConfirmEvent(ctx context.Context, r EventReceipt, ttl time.Duration) error {
	expr := "SET #state = :queued, #expires_at = :exp REMOVE #lease_until"
	cond := "#nonce = :nonce"
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.Table),
		Key:                      key(oncePrefix + r.Key),
		UpdateExpression:         aws.String(expr),
		ConditionExpression:      aws.String(cond),
		ExpressionAttributeNames: names(expr, cond),
		ExpressionAttributeValues: map[string]types.AttributeValue{":nonce": str(r.nonce), ":queued": str(eventQueued),
			":exp": num(unixCeil(s.now().Add(ttl)))},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // taken over after the lease: the taker confirms its own
	}
	if err != nil {
		return fmt.Errorf("tokenstore: confirm event: %w", err)
	}
	return nil
}

// webhookOwnerKey is the record of webhook webhookID of company companyID. The company is part
// of the key so that a payload naming another company cannot borrow a webhook's owner.
func webhookOwnerKey(companyID int64, webhookID string) string {
	return oncePrefix + "webhook-owner#" + strconv.FormatInt(companyID, 10) + "#" + webhookID
}

// RecordWebhookOwner remembers that webhook webhookID of the owner's company was registered by
// installation owner, for as long as the table lives (no expiry: a webhook lives until it is
// deleted). v1 payloads name no owner; the receiver reads it back with WebhookOwner.
func (s *Store) RecordWebhookOwner(ctx context.Context, webhookID string, owner InstallationID) error {
	if !owner.Valid() || webhookID == "" || len(webhookID) > maxOnceKey/2 {
		return fmt.Errorf("tokenstore: record webhook owner: %w: a valid installation and a webhook id are required", ErrInvalid)
	}
	_, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table), Item: map[string]types.AttributeValue{
		attrPK:       str(webhookOwnerKey(owner.CompanyID, webhookID)),
		"company_id": num(owner.CompanyID),
		"user_id":    num(owner.UserID),
		"created_at": str(text(s.now())),
	}})
	if err != nil {
		return fmt.Errorf("tokenstore: record webhook owner: %w", err)
	}
	return nil
}

// WebhookOwner returns the installation that registered webhook webhookID of company
// companyID (RecordWebhookOwner); ErrWebhookUnknown when none is recorded.
func (s *Store) WebhookOwner(ctx context.Context, companyID int64, webhookID string) (InstallationID, error) {
	if companyID <= 0 || webhookID == "" || len(webhookID) > maxOnceKey/2 {
		return InstallationID{}, ErrWebhookUnknown
	}
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: key(webhookOwnerKey(companyID, webhookID)),
		ConsistentRead: aws.Bool(true)})
	if err != nil {
		return InstallationID{}, fmt.Errorf("tokenstore: webhook owner: %w", err)
	}
	u, ok := out.Item["user_id"].(*types.AttributeValueMemberN)
	if !ok {
		return InstallationID{}, ErrWebhookUnknown
	}
	uid, err := strconv.ParseInt(u.Value, 10, 64)
	if err != nil || uid <= 0 {
		return InstallationID{}, ErrWebhookUnknown
	}
	return InstallationID{CompanyID: companyID, UserID: uid}, nil
}

// ForgetEvent deletes an accepted event's record, when handing the event on failed and the
// delivery is answered with an error so that Pipedrive's retry is accepted. It deletes only the
// record r wrote (a later acceptance by another delivery stays).
func (s *Store) ForgetEvent(ctx context.Context, r EventReceipt) error {
	cond := "#nonce = :nonce"
	_, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.Table),
		Key:                       key(oncePrefix + r.Key),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names(cond),
		ExpressionAttributeValues: map[string]types.AttributeValue{":nonce": str(r.nonce)},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // not ours any more (expired and taken, or already gone)
	}
	if err != nil {
		return fmt.Errorf("tokenstore: forget event: %w", err)
	}
	return nil
}

func code(r types.CancellationReason) string { return aws.ToString(r.Code) }
