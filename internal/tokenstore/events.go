package tokenstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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
// handled, for ttl, in ONE DynamoDB request: a transaction that checks the installation is
// active and puts the event's record unless a live one exists. So a retried delivery is refused
// with ErrEventSeen and an event for an unknown or inactive installation with
// ErrEventNotInstalled (both as *EventRefusal), and an accepted one costs one write.
// An SDK retry of a transaction whose answer was lost recognises its own record (nonce).
func (s *Store) AcceptEvent(ctx context.Context, id InstallationID, eventKey string, ttl time.Duration) (EventReceipt, error) {
	if !id.Valid() || eventKey == "" || len(eventKey) > maxOnceKey || ttl <= 0 {
		return EventReceipt{}, fmt.Errorf("tokenstore: accept event: %w: a valid installation, a key of 1 to %d bytes and a positive ttl are required", ErrInvalid, maxOnceKey)
	}
	now := s.now()
	nonce := rand.Text()
	pk := oncePrefix + eventKey
	putCond := "attribute_not_exists(#pk) OR #expires_at <= :now"
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
			},
			ConditionExpression:                 aws.String(putCond),
			ExpressionAttributeNames:            names(putCond),
			ExpressionAttributeValues:           map[string]types.AttributeValue{":now": num(now.Unix())},
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
			return EventReceipt{}, &EventRefusal{Err: ErrEventSeen}
		}
	}
	if err != nil {
		return EventReceipt{}, fmt.Errorf("tokenstore: accept event: %w", err)
	}
	return EventReceipt{Key: eventKey, nonce: nonce}, nil
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
