// Package oncall is the vocabulary for telling a person that something needs them: the Alert,
// its Severity, a Sender that publishes one, and Notifier (publish-or-log). It imports no AWS
// SDK, so pure logic (refresh, the worker's runners, the install use case) can raise alerts;
// internal/alerts publishes them to SNS with de-duplication.
//
// Alerts carry only safe fields: a reason, ids, a fixed summary and a short detail. Callers must
// never put a token, authorization code, state, client secret or response body into an Alert.
package oncall

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/deadline"
)

// Severity says how urgently a person must act.
type Severity string

// The severities.
const (
	// SeverityCritical: the app is broken for users until someone acts (bad credentials, config).
	SeverityCritical Severity = "critical"
	// SeverityWarning: something degraded or one installation lost; look during working hours.
	SeverityWarning Severity = "warning"
)

// Alert is one thing a person must look at. Every field is published: put no secrets in it.
type Alert struct {
	// Reason is a stable machine-readable name, such as a pderrors.Reason ("client_invalid").
	// Required; it is the dedupe key's first part and the "reason" message attribute.
	Reason string
	// Severity defaults to SeverityCritical.
	Severity Severity
	// CompanyID and UserID name the installation concerned; 0 when the alert is app-wide.
	CompanyID int64
	UserID    int64
	// Summary is one human sentence; it becomes part of the subject.
	Summary string
	// Detail is optional context that is safe to publish (e.g. pderrors.Decision.Message).
	Detail string
}

// Sender publishes one alert; *alerts.Publisher (SNS) satisfies it.
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
