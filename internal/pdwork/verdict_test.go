package pdwork

import (
	"errors"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// TestDecisionsMatchClassifier guards the worker's status rows against drifting from pderrors:
// every Decision a call failure carries maps to an outcome the same way.
func TestDecisionsMatchClassifier(t *testing.T) {
	tests := []struct {
		action pderrors.Action
		want   worker.Outcome
	}{
		{pderrors.Retry, worker.OutcomeRetry},
		{pderrors.DeadLetter, worker.OutcomeDeadLettered},
		{pderrors.Reauthorize, worker.OutcomeDeadLettered},
	}
	for _, tt := range tests {
		err := &pderrors.Error{Op: "GET /api/v2/deals", Decision: pderrors.Decision{Action: tt.action, Reason: "x", Status: 499}}
		if got := callVerdict(err); got.Outcome != tt.want || got.Status != 499 || got.Reason != "x" {
			t.Errorf("callVerdict(%v) = %s (%s) status %d, want %s (x) status 499", tt.action, got.Outcome, got.Reason, got.Status, tt.want)
		}
	}
}

func TestVerdictOf(t *testing.T) {
	want := worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: ReasonNeedsReauth}
	if got := VerdictOf(decided(want)); got.Outcome != want.Outcome || got.Reason != want.Reason {
		t.Errorf("VerdictOf(*Decided) = %+v, want %+v", got, want)
	}
	other := errors.New("not a session error")
	if got := VerdictOf(other); got.Outcome != worker.OutcomeRetry || !errors.Is(got.Err, other) {
		t.Errorf("VerdictOf(other error) = %+v, want a retry carrying it", got)
	}
}
