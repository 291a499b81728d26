package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ErrUninstallPredates is returned (wrapped) by UninstallAsOf when the installation was made
// (installed or re-installed) after the uninstall's date: the uninstall belongs to an earlier
// installation and must not remove the current one.
var ErrUninstallPredates = errors.New("tokenstore: uninstall predates the installation")

// UninstallAsOf is Uninstall for a request dated at: in the same conditional write it refuses,
// with ErrUninstallPredates, when the current installation was made after at (a delayed or
// replayed uninstall of an earlier installation). A zero at, or an installation stored before
// install times were recorded, uninstalls unconditionally. Times are compared at second
// precision; the caller adds any tolerance for clock skew to at. Like Uninstall, uninstalling
// again is not an error and ErrNotFound means it was never installed.
func (s *Store) UninstallAsOf(ctx context.Context, id InstallationID, at time.Time) (Installation, error) {
	if at.IsZero() {
		return s.Uninstall(ctx, id)
	}
	now := s.now()
	attrs, ok, err := s.update(ctx, instKey(id),
		"SET #status = :uninstalled, #version = #version + :one, #updated_at = :now_text "+
			"REMOVE #access_token, #refresh_token, #due_shard, #refresh_due_at, #lease_owner, #lease_until",
		"attribute_exists(#pk) AND #status <> :uninstalled AND "+
			"(attribute_not_exists(#last_installed_at) OR #last_installed_at <= :at)",
		map[string]types.AttributeValue{
			":uninstalled": str(string(StatusUninstalled)),
			":one":         num(1),
			":now_text":    str(text(now)),
			":at":          num(at.Unix()),
		})
	if err != nil {
		return Installation{}, fmt.Errorf("tokenstore: uninstall %s: %w", id, err)
	}
	if ok {
		return decodeInstallation(attrs)
	}
	if attrs == nil {
		return Installation{}, fmt.Errorf("tokenstore: uninstall %s: %w", id, ErrNotFound)
	}
	in, err := decodeInstallation(attrs)
	if err != nil {
		return Installation{}, fmt.Errorf("tokenstore: uninstall %s: %w", id, err)
	}
	if in.Status == StatusUninstalled {
		return in, nil // already uninstalled: nothing to do, as Uninstall
	}
	return in, fmt.Errorf("tokenstore: uninstall %s dated %s: %w", id, at.UTC().Format(time.RFC3339), ErrUninstallPredates)
}
