package worker_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// opCounter counts the requests a client sends, by operation.
type opCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *opCounter) middleware(s *middleware.Stack) error {
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc("count", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		c.mu.Lock()
		c.n[awsmiddleware.GetOperationName(ctx)]++
		c.mu.Unlock()
		return next.HandleInitialize(ctx, in)
	}), middleware.Before)
}

func (c *opCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// TestEngineSQSRequestsPerJob measures the SQS requests the worker itself makes per job, by
// the job's outcome, against moto: a batch of 10 jobs is delivered and run, and the engine's
// SQS client counts its requests. A job that succeeds (or is retried through
// batchItemFailures) costs the worker none; the only per-job SQS requests are the enqueuer's
// send and the event source mapping's receive and delete, which Lambda makes (see
// docs/capacity.md). It logs one line for docs/capacity.md:
//
//	worker-sqs jobs=10 succeeded=0.00 retried=… deferred=… dead_lettered=… (SQS requests per job, by the worker)
func TestEngineSQSRequestsPerJob(t *testing.T) {
	const batch = 10
	w := newWorld(t)
	count := &opCounter{n: map[string]int{}}
	w.engine.Queue = sqs.NewFromConfig(testenv.AWS(t), func(o *sqs.Options) { o.APIOptions = append(o.APIOptions, count.middleware) })
	rows := []struct {
		name    string
		verdict worker.Verdict
		// max is the most requests per job the worker may make.
		max float64
	}{
		{"succeeded", worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: "paused"}, 0},
		{"retried", worker.Verdict{Outcome: worker.OutcomeRetry, Reason: "test", RetryAfter: 30 * time.Second}, 1},
		{"deferred", worker.Verdict{Outcome: worker.OutcomeDeferred, Reason: "test", RetryAfter: 30 * time.Second}, 1},
		{"dead_lettered", worker.Verdict{Outcome: worker.OutcomeDeadLettered, Reason: "test", Message: "test"}, 1},
	}
	fields := []string{fmt.Sprintf("jobs=%d", batch)}
	for _, r := range rows {
		w.runner.verdict = func(jobs.Job) worker.Verdict { return r.verdict }
		bodies := make([]string, batch)
		for i := range bodies {
			bodies[i] = pauseJob(fmt.Sprintf("sqs-cost-%s-%d", r.name, i), int64(100+i))
		}
		count.take()
		w.deliver(bodies...)
		ops := count.take()
		total := 0
		for _, n := range ops {
			total += n
		}
		per := float64(total) / batch
		var detail []string
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			detail = append(detail, fmt.Sprintf("%s:%d", op, ops[op]))
		}
		fields = append(fields, fmt.Sprintf("%s=%.2f(%s)", r.name, per, strings.Join(detail, ",")))
		if per > r.max {
			t.Errorf("%s: %.2f SQS requests per job by the worker (%v), want at most %.0f", r.name, per, ops, r.max)
		}
	}
	t.Logf("worker-sqs %s (SQS requests per job, by the worker)", strings.Join(fields, " "))
}
