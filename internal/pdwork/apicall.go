package pdwork

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// DefaultMaxResultBody bounds an api_call's Result body.
const DefaultMaxResultBody = 256 << 10

// APICall runs api_call jobs: Method Path with Body on the installation's api_domain. Sessions
// is required. Safe for concurrent use.
type APICall struct {
	Sessions *Sessions
	// MaxResultBody bounds the answer returned in the verdict's Body (DefaultMaxResultBody when
	// zero); a larger answer, or one that is not JSON, is left out and BodyOmitted set.
	MaxResultBody int
}

var (
	_ worker.Runner    = (*APICall)(nil)
	_ worker.Checker   = (*APICall)(nil)
	_ worker.LogAttrer = (*APICall)(nil)
)

// Run performs the job's call: succeeded with Pipedrive's status and answer on 2xx, otherwise
// the verdict of the Session (refresh after a 401, retry or dead-letter per pderrors).
func (r *APICall) Run(ctx context.Context, j jobs.Job) worker.Verdict {
	ss, err := r.Sessions.Open(ctx, j)
	if err != nil {
		return VerdictOf(err)
	}
	var body []byte
	if len(j.Body) > 0 && !bytes.Equal(bytes.TrimSpace(j.Body), []byte("null")) {
		body = j.Body
	}
	resp, err := ss.Do(ctx, j.Method, j.Path, body)
	if err != nil {
		v := VerdictOf(err)
		if v.Outcome == worker.OutcomeRetry && OutcomeUnknown(j, pderrors.Reason(v.Reason)) {
			// The request may have been carried out (a lost answer, a 5xx after the work):
			// sending it again could create a second deal. A person decides.
			r.Sessions.Alerts.Notify(ctx, alerts.Alert{Reason: ReasonOutcomeUnknown, Severity: alerts.SeverityWarning,
				CompanyID: j.CompanyID, UserID: j.UserID,
				Summary: "A non-idempotent Pipedrive call may or may not have been carried out; it was dead-lettered, not sent again",
				Detail:  "job " + j.ID + " (" + j.Method + " " + route(j.Path) + "): " + v.Reason + "; check Pipedrive, then redrive or drop it"})
			return worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonOutcomeUnknown, Status: v.Status,
				Message: "the call's outcome is unknown (" + v.Reason + "); not sent again (set retry_safe on jobs that may be repeated)", Err: v.Err}
		}
		return v
	}
	v := worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: string(pderrors.ReasonOK), Status: resp.Status}
	switch {
	case len(resp.Body) == 0:
	case resp.Truncated || len(resp.Body) > r.maxResultBody() || !json.Valid(resp.Body):
		v.BodyOmitted = true
	default:
		v.Body = resp.Body
	}
	return v
}

// ReasonOutcomeUnknown dead-letters a non-idempotent call whose answer was lost or was a server
// error, or whose worker died during the call: it may have been carried out.
const ReasonOutcomeUnknown = worker.ReasonOutcomeUnknown

// Repeatable reports whether j's call may be sent again after an attempt whose outcome is
// unknown: every job but a POST (an api_call creating something; GET, PUT, PATCH and DELETE
// of one resource repeat harmlessly, and other kinds have no Method) that does not say
// RetrySafe.
func Repeatable(j jobs.Job) bool {
	return j.Method != http.MethodPost || j.RetrySafe
}

// OutcomeUnknown reports whether a failed attempt of j must not be sent again blindly: j is not
// Repeatable, and the failure does not prove Pipedrive left it undone — a timeout, a broken
// connection, a cancelled call or a 5xx other than 503 (which Pipedrive answers before doing
// anything). A 429, a 503 or any 4xx means it was not carried out.
func OutcomeUnknown(j jobs.Job, reason pderrors.Reason) bool {
	if Repeatable(j) {
		return false
	}
	switch reason {
	case pderrors.ReasonTimeout, pderrors.ReasonNetwork, pderrors.ReasonCanceled, pderrors.ReasonServerError, pderrors.ReasonUnknownError:
		return true
	}
	return false
}

// Check is jobs.CheckAPICall: Method and Path are required.
func (*APICall) Check(j jobs.Job) []string { return jobs.CheckAPICall(j) }

// LogAttrs adds the method and the route (the path without its query string, which may carry
// filters or ids) to the job's decision event.
func (*APICall) LogAttrs(j jobs.Job) []slog.Attr {
	return []slog.Attr{slog.String("method", j.Method), slog.String("route", route(j.Path))}
}

func (r *APICall) maxResultBody() int {
	if r.MaxResultBody > 0 {
		return r.MaxResultBody
	}
	return DefaultMaxResultBody
}
