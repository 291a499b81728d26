package pdwork_test

import (
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

func TestOutcomeUnknown(t *testing.T) {
	post := jobs.Job{Method: "POST"}
	safe := jobs.Job{Method: "POST", RetrySafe: true}
	tests := []struct {
		name   string
		j      jobs.Job
		reason pderrors.Reason
		want   bool
	}{
		{"POST timed out", post, pderrors.ReasonTimeout, true},
		{"POST connection broken", post, pderrors.ReasonNetwork, true},
		{"POST cancelled at the deadline", post, pderrors.ReasonCanceled, true},
		{"POST 500", post, pderrors.ReasonServerError, true},
		{"POST unknown error", post, pderrors.ReasonUnknownError, true},
		{"POST 503: not done", post, pderrors.ReasonUnavailable, false},
		{"POST 429: not done", post, pderrors.ReasonRateLimited, false},
		{"POST retry_safe timed out", safe, pderrors.ReasonTimeout, false},
		{"PATCH 500", jobs.Job{Method: "PATCH"}, pderrors.ReasonServerError, false},
		{"PUT timed out", jobs.Job{Method: "PUT"}, pderrors.ReasonTimeout, false},
		{"DELETE 500", jobs.Job{Method: "DELETE"}, pderrors.ReasonServerError, false},
		{"GET timed out", jobs.Job{Method: "GET"}, pderrors.ReasonTimeout, false},
	}
	for _, tt := range tests {
		if got := pdwork.OutcomeUnknown(tt.j, tt.reason); got != tt.want {
			t.Errorf("OutcomeUnknown(%s) = %t, want %t", tt.name, got, tt.want)
		}
	}
}
