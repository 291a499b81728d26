package pdwork

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"

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
		return VerdictOf(err)
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
