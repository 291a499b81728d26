package pdwork

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// APICall runs api_call jobs: Method Path with Body on the installation's api_domain. Sessions
// is required. Safe for concurrent use.
type APICall struct {
	Sessions *Sessions
	// PathPrefixes, when set, are the only API paths jobs may call (each "/api/…"; a path
	// matches a prefix equal to it or followed by "/"): a job outside them is dead-lettered
	// (ReasonPathNotAllowed) and alerts, without calling Pipedrive. Empty: any path.
	PathPrefixes []string
}

var (
	_ worker.Runner    = (*APICall)(nil)
	_ worker.Checker   = (*APICall)(nil)
	_ worker.LogAttrer = (*APICall)(nil)
)

// ReasonPathNotAllowed dead-letters an api_call outside APICall.PathPrefixes.
const ReasonPathNotAllowed = "path_not_allowed"

// Run performs the job's call: succeeded with Pipedrive's status on 2xx, otherwise the verdict
// of the Session (refresh after a 401, retry or dead-letter per pderrors). Pipedrive's answer
// body is never part of the verdict: whoever can hand the worker a job must not read a
// customer's data through it.
func (r *APICall) Run(ctx context.Context, j jobs.Job) worker.Verdict {
	if !r.allowed(j.Path) {
		r.Sessions.Alerts.Notify(ctx, alerts.Alert{Reason: ReasonPathNotAllowed, Severity: alerts.SeverityWarning,
			CompanyID: j.CompanyID, UserID: j.UserID,
			Summary: "An api_call job asked for an API path outside ApiCallPathPrefixes; it was dead-lettered without calling Pipedrive",
			Detail:  "job " + j.ID + " (" + j.Method + " " + route(j.Path) + "): find who sent it"})
		return worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonPathNotAllowed,
			Message: "path " + route(j.Path) + " is outside the allowed API path prefixes"}
	}
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
				Detail:  "job " + j.ID + " (" + j.Method + " " + route(j.Path) + "): " + v.Reason + "; check Pipedrive, then pdctl dlq redrive --id MESSAGE_ID if it did not happen, or drop it"})
			return worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonOutcomeUnknown, Status: v.Status,
				Message: "the call's outcome is unknown (" + v.Reason + "); not sent again (set retry_safe on jobs that may be repeated)", Err: v.Err}
		}
		return v
	}
	return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: string(pderrors.ReasonOK), Status: resp.Status}
}

// allowed reports whether path is within PathPrefixes. A path that is not already clean (dot
// segments, doubled slashes) or hides them encoded is outside every prefix.
func (r *APICall) allowed(p string) bool {
	if len(r.PathPrefixes) == 0 {
		return true
	}
	p = route(p)
	if lower := strings.ToLower(p); path.Clean(p) != p || strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f") {
		return false
	}
	for _, prefix := range r.PathPrefixes {
		prefix = strings.TrimSuffix(prefix, "/")
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}

// ParsePathPrefixes reads ApiCallPathPrefixes (API_PATH_PREFIXES): comma-separated API path
// prefixes, each starting with "/api/" and clean; "" is none (any path).
func ParsePathPrefixes(s string) ([]string, error) {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.HasPrefix(p, "/api/") || path.Clean(p) != strings.TrimSuffix(p, "/") || strings.ContainsAny(p, "?#%") {
			return nil, fmt.Errorf("pdwork: API path prefix %q: want a clean path starting with /api/, e.g. /api/v2/deals", p)
		}
		out = append(out, p)
	}
	return out, nil
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
