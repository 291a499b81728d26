package callback

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
)

// appUninstall is the handler's Uninstalled for an app with an uninstall hook: it queues the
// app_uninstall job of the installation version that was uninstalled (one per version, so a
// repeated uninstall request queues it once). A failure is logged and alerted: the uninstall
// itself stands, and Pipedrive does not resend it.
func appUninstall(q install.Enqueuer, notify alerts.Notifier, log *slog.Logger) func(context.Context, installation.Installation) {
	return func(ctx context.Context, gone installation.Installation) {
		j := jobs.AppUninstall(gone.ID, "v"+strconv.FormatInt(gone.Version, 10))
		if err := q.Enqueue(ctx, j); err != nil {
			log.LogAttrs(ctx, slog.LevelError, "enqueue app_uninstall failed",
				slog.Int64("company_id", gone.ID.CompanyID), slog.Int64("user_id", gone.ID.UserID),
				slog.String("action", "enqueue"), slog.String("reason", "enqueue_failed"), slog.String("error", err.Error()))
			notify.Notify(ctx, alerts.Alert{Reason: "enqueue_failed", Severity: alerts.SeverityWarning, CompanyID: gone.ID.CompanyID, UserID: gone.ID.UserID,
				Summary: "The app's uninstall hook could not be queued for an uninstalled installation", Detail: alerts.ErrorDetail(err)})
		}
	}
}
