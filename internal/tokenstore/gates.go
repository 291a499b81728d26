package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// gatePrefix keys a company's gate record: gate#<company id>. It holds the company's pause
// (pause_reason, pause_since, probe_at, all in Unix milliseconds) and the burst holds of its
// tokens (hold_<user id> and hold_<user id>_search: no call before that time), so that one
// read tells a worker everything that stops or slows a company's calls. It expires
// (expires_at) GateTTL after its last write.
const gatePrefix = "gate#"

// GateTTL is how long a gate record outlives its last write. A pause ends by a probe or a
// person, not by expiry; the TTL only removes records of companies no longer heard of.
const GateTTL = 14 * 24 * time.Hour

// Gate is what stops or slows the calls of one company.
type Gate struct {
	CompanyID int64
	// Paused is true while the company's calls are paused; Reason says why (a pderrors reason
	// such as "daily_budget_exceeded" or "payment_required"), Since since when, and ProbeAt
	// when the next probe call may be made.
	Paused  bool
	Reason  string
	Since   time.Time
	ProbeAt time.Time
	// Holds are the burst holds of the company's tokens, by HoldKey: no call before the time.
	Holds map[string]time.Time
}

// HoldKey names one token's burst window in a Gate's Holds: the user id, with "_search" for
// the search window.
func HoldKey(userID int64, search bool) string {
	k := strconv.FormatInt(userID, 10)
	if search {
		k += "_search"
	}
	return k
}

func gateKey(companyID int64) string { return gatePrefix + strconv.FormatInt(companyID, 10) }

func ms(t time.Time) types.AttributeValue { return num(t.UnixMilli()) }

// Gate reads the company's gate record (an eventually consistent read: it is advice for
// pacing and pausing, and a second's staleness costs at most one extra call). A company
// without one has the zero Gate with its CompanyID.
func (s *Store) Gate(ctx context.Context, companyID int64) (Gate, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: key(gateKey(companyID))})
	if err != nil {
		return Gate{}, fmt.Errorf("tokenstore: gate %d: %w", companyID, err)
	}
	return decodeGate(companyID, out.Item), nil
}

// decodeGate reads a gate item; unreadable attributes count as absent.
func decodeGate(companyID int64, item map[string]types.AttributeValue) Gate {
	g := Gate{CompanyID: companyID, Holds: map[string]time.Time{}}
	msAttr := func(name string) time.Time {
		if n, ok := item[name].(*types.AttributeValueMemberN); ok {
			if v, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
				return time.UnixMilli(v)
			}
		}
		return time.Time{}
	}
	if r, ok := item["pause_reason"].(*types.AttributeValueMemberS); ok && r.Value != "" {
		g.Paused, g.Reason = true, r.Value
		g.Since, g.ProbeAt = msAttr("pause_since"), msAttr("probe_at")
	}
	for name := range item {
		if k, ok := strings.CutPrefix(name, "hold_"); ok {
			g.Holds[k] = msAttr(name)
		}
	}
	return g
}

// PauseCompany pauses the company's calls for reason until a probe at probeAt. created is true
// when no pause was in force (the caller alerts, once per pause); an existing pause keeps its
// reason and start and gets the later of the two probe times.
func (s *Store) PauseCompany(ctx context.Context, companyID int64, reason string, probeAt time.Time) (created bool, err error) {
	if companyID <= 0 || reason == "" {
		return false, fmt.Errorf("tokenstore: pause %d: %w: a company and a reason are required", companyID, ErrInvalid)
	}
	now := s.now()
	_, ok, err := s.update(ctx, gateKey(companyID),
		"SET #pause_reason = :reason, #pause_since = :now, #probe_at = :probe, #expires_at = :exp",
		"attribute_not_exists(#pause_reason)",
		map[string]types.AttributeValue{":reason": str(shorten(reason)), ":now": ms(now), ":probe": ms(probeAt), ":exp": num(unixCeil(now.Add(GateTTL)))})
	if err != nil {
		return false, fmt.Errorf("tokenstore: pause %d: %w", companyID, err)
	}
	if ok {
		return true, nil
	}
	// Already paused: move the probe later, never earlier (another worker may have claimed it).
	if _, _, err := s.update(ctx, gateKey(companyID),
		"SET #probe_at = :probe, #expires_at = :exp",
		"attribute_exists(#pause_reason) AND #probe_at < :probe",
		map[string]types.AttributeValue{":probe": ms(probeAt), ":exp": num(unixCeil(now.Add(GateTTL)))}); err != nil {
		return false, fmt.Errorf("tokenstore: pause %d: %w", companyID, err)
	}
	return false, nil
}

// ClaimProbe lets one caller probe a paused company: it reports true to the caller that moves
// probe_at from at or before now to next; every other caller (and any call when the company
// is not paused) gets false.
func (s *Store) ClaimProbe(ctx context.Context, companyID int64, next time.Time) (bool, error) {
	now := s.now()
	_, ok, err := s.update(ctx, gateKey(companyID),
		"SET #probe_at = :next",
		"attribute_exists(#pause_reason) AND #probe_at <= :now",
		map[string]types.AttributeValue{":next": ms(next), ":now": ms(now)})
	if err != nil {
		return false, fmt.Errorf("tokenstore: claim probe %d: %w", companyID, err)
	}
	return ok, nil
}

// LiftPause ends the company's pause (a probe call succeeded, or an operator lifted it).
// lifted is false when there was none.
func (s *Store) LiftPause(ctx context.Context, companyID int64) (lifted bool, err error) {
	_, ok, err := s.update(ctx, gateKey(companyID),
		"REMOVE #pause_reason, #pause_since, #probe_at",
		"attribute_exists(#pause_reason)", nil)
	if err != nil {
		return false, fmt.Errorf("tokenstore: lift pause %d: %w", companyID, err)
	}
	return ok, nil
}

// HoldToken records that the token's burst window (HoldKey) has no room before until, unless
// a later hold is recorded already. One write; a lost race to a later hold is not an error.
func (s *Store) HoldToken(ctx context.Context, companyID int64, holdKey string, until time.Time) error {
	if companyID <= 0 || holdKey == "" || strings.ContainsAny(holdKey, " .#:") {
		return fmt.Errorf("tokenstore: hold %d: %w: a company and a hold key are required", companyID, ErrInvalid)
	}
	now := s.now()
	// hold_<key> holds digits, which names() does not take: spell the name out.
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Table),
		Key:                       key(gateKey(companyID)),
		UpdateExpression:          aws.String("SET #h = :until, #expires_at = if_not_exists(#expires_at, :exp)"),
		ConditionExpression:       aws.String("attribute_not_exists(#h) OR #h < :until"),
		ExpressionAttributeNames:  map[string]string{"#h": "hold_" + holdKey, "#expires_at": "expires_at"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":until": ms(until), ":exp": num(unixCeil(now.Add(GateTTL)))},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("tokenstore: hold %d: %w", companyID, err)
	}
	return nil
}
