package alerts

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/deadline"
)

// Sender publishes one alert; *Publisher satisfies it.
type Sender interface {
	Alert(ctx context.Context, a Alert) error
}

// DefaultNotifyTimeout bounds one publish made by Notifier.
const DefaultNotifyTimeout = 5 * time.Second

// Notifier is alert-or-log: it publishes an alert without waiting on the caller's cancellation
// (a closed browser tab or an ending batch must not lose it) and logs instead when no Sender
// is configured or the publish fails. The zero value logs nothing and publishes nothing.
// Safe for concurrent use.
type Notifier struct {
	// Sender publishes; nil logs every alert as "alert (no publisher configured)".
	Sender Sender
	// Log receives the fallback lines; nil discards.
	Log *slog.Logger
	// Timeout bounds the publish (DefaultNotifyTimeout when zero).
	Timeout time.Duration
}

// Notify publishes a, or logs it when that is impossible. It never returns an error: an alert
// is the last resort, and its failure is logged with the alert's reason and installation.
func (n Notifier) Notify(ctx context.Context, a Alert) {
	log := n.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	attrs := []slog.Attr{slog.String("action", "alert"), slog.String("reason", a.Reason),
		slog.Int64("company_id", a.CompanyID), slog.Int64("user_id", a.UserID)}
	if n.Sender == nil {
		log.LogAttrs(ctx, slog.LevelError, "alert (no publisher configured)", attrs...)
		return
	}
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = DefaultNotifyTimeout
	}
	actx, cancel := deadline.Detached(ctx, timeout)
	defer cancel()
	if err := n.Sender.Alert(actx, a); err != nil {
		log.LogAttrs(ctx, slog.LevelError, "alert publish failed", append(attrs, slog.String("error", err.Error()))...)
	}
}

// maxErrorDetail bounds ErrorDetail's text.
const maxErrorDetail = 300

// ErrorDetail is an error's text cut to 300 bytes on a UTF-8 boundary, for an alert's Detail or
// a dead letter's attribute; "" for nil. Only errors of this project's packages may be passed:
// they carry no token, code, secret or body.
func ErrorDetail(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > maxErrorDetail {
		s = strings.ToValidUTF8(s[:maxErrorDetail], "")
	}
	return s
}
