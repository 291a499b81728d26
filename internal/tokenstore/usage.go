package tokenstore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// MarkUse records a use of in (as read by the caller, e.g. with Get) at the store's now:
// warm_until becomes installation.UseMarkUntil(now) and the refresh-due entry
// installation.NextRefresh of the result, so an idle installation whose access token is still
// valid is kept warm from now on. Callers mark only when installation.NeedsUseMark says so,
// which keeps this to one write per installation per installation.UseMarkEvery.
//
// The write is conditional on in.Version, on the installation being active and on nobody
// holding its refresh lease: a mark must never move the version under a refresh in flight
// (its save would fail). ErrConflict when any of that changed since in was read (callers
// treat a mark as best effort: the next use marks again); ErrNotFound.
func (s *Store) MarkUse(ctx context.Context, in Installation) (Installation, error) {
	now := s.now()
	next := in
	next.WarmUntil = installation.UseMarkUntil(now)
	attrs, ok, err := s.update(ctx, instKey(in.ID),
		"SET #warm_until = :warm, #refresh_due_at = :due, #due_shard = :shard, #version = #version + :one, #updated_at = :now_text",
		"#version = :v AND #status = :active AND attribute_not_exists(#lease_owner)",
		map[string]types.AttributeValue{
			":warm":     num(unix(next.WarmUntil)),
			":due":      num(installation.NextRefresh(next).Unix()),
			":shard":    str(shardOf(in.ID, s.shards())),
			":one":      num(1),
			":now_text": str(text(now)),
			":v":        num(in.Version),
			":active":   str(string(StatusActive)),
		})
	if err != nil {
		return Installation{}, fmt.Errorf("tokenstore: mark use %s: %w", in.ID, err)
	}
	if !ok {
		if attrs == nil {
			return Installation{}, fmt.Errorf("tokenstore: mark use %s: %w", in.ID, ErrNotFound)
		}
		return Installation{}, fmt.Errorf("tokenstore: mark use %s: %w: changed since read", in.ID, ErrConflict)
	}
	marked, err := decodeInstallation(attrs)
	if err != nil {
		return Installation{}, fmt.Errorf("tokenstore: mark use %s: %w", in.ID, err)
	}
	// The version condition proves the tokens are the ones in carries: no need to open them.
	marked.AccessToken, marked.RefreshToken = in.AccessToken, in.RefreshToken
	return marked, nil
}

// SetAlwaysWarm sets or clears id's always-warm flag (installation.Installation.AlwaysWarm)
// and moves its refresh-due entry to installation.NextRefresh of the result: set, the
// installation is refreshed before its access token expires whether used or not; cleared, it
// follows the adaptive rule again. It waits out a refresh in flight (the write is conditional
// on the version it read and on no lease) and gives up with ErrConflict after a few tries.
// It returns the installation without its tokens. ErrNotActive for an installation that is
// not active; ErrNotFound.
func (s *Store) SetAlwaysWarm(ctx context.Context, id InstallationID, on bool) (Installation, error) {
	for attempt := range installAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return Installation{}, fmt.Errorf("tokenstore: set always warm %s: %w", id, ctx.Err())
			case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
			}
		}
		in, err := s.get(ctx, id)
		if err != nil {
			return Installation{}, fmt.Errorf("tokenstore: set always warm %s: %w", id, err)
		}
		if in.Status != StatusActive {
			return Installation{}, fmt.Errorf("tokenstore: set always warm %s: %w (%s)", id, ErrNotActive, in.Status)
		}
		if in.LeaseOwner != "" {
			continue // a refresh is in flight: its save must not meet a moved version
		}
		next := in
		next.AlwaysWarm = on
		now := s.now()
		attrs, ok, err := s.update(ctx, instKey(id),
			"SET #always_warm = :on, #refresh_due_at = :due, #due_shard = :shard, #version = #version + :one, #updated_at = :now_text",
			"#version = :v AND #status = :active AND attribute_not_exists(#lease_owner)",
			map[string]types.AttributeValue{
				":on":       &types.AttributeValueMemberBOOL{Value: on},
				":due":      num(installation.NextRefresh(next).Unix()),
				":shard":    str(shardOf(id, s.shards())),
				":one":      num(1),
				":now_text": str(text(now)),
				":v":        num(in.Version),
				":active":   str(string(StatusActive)),
			})
		if err != nil {
			return Installation{}, fmt.Errorf("tokenstore: set always warm %s: %w", id, err)
		}
		if ok {
			return decodeInstallation(attrs)
		}
	}
	return Installation{}, fmt.Errorf("tokenstore: set always warm %s: %d attempts: %w", id, installAttempts, ErrConflict)
}

// Reschedule releases owner's lease and makes the installation due at dueAt, for a refresher
// that leased an installation whose refresh-due entry does not match the due rule
// (installation.NextRefresh; e.g. written before the rule, or a use mark lost in a race) and
// refreshed nothing. Errors: ErrLeaseLost, ErrNotActive, ErrNotFound.
func (s *Store) Reschedule(ctx context.Context, id InstallationID, owner string, dueAt time.Time) error {
	if owner == "" || dueAt.IsZero() {
		return fmt.Errorf("tokenstore: reschedule %s: %w: owner and due time are required", id, ErrInvalid)
	}
	s.leased.take(instKey(id), owner) // the lease ends here, whatever the outcome
	now := s.now()
	attrs, ok, err := s.update(ctx, instKey(id),
		"SET #refresh_due_at = :due, #due_shard = :shard, #version = #version + :one, #updated_at = :now_text "+
			"REMOVE #lease_owner, #lease_until",
		"#lease_owner = :owner AND #status = :active",
		map[string]types.AttributeValue{
			":due":      num(dueAt.Unix()),
			":shard":    str(shardOf(id, s.shards())),
			":one":      num(1),
			":now_text": str(text(now)),
			":owner":    str(owner),
			":active":   str(string(StatusActive)),
		})
	if err != nil {
		return fmt.Errorf("tokenstore: reschedule %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("tokenstore: reschedule %s: %w", id, ownerFailure(attrs, owner, false))
	}
	return nil
}
