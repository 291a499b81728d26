package webhooks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// counting counts API operations (not transport retries) of an SDK client.
func counting(n *atomic.Int64) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("count", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			n.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	}
}

// BenchmarkReceive200Concurrent drives 200 concurrent deliveries (distinct events of one
// installation) per iteration through the receiver's handler against moto, and reports the
// p50 and p99 handling time and the AWS requests per delivery. The goal is at most two
// DynamoDB requests (the pending dedupe transaction and its confirmation) and one SQS send per
// delivery: the ratios are the measured counts against it (1.00 = at the goal, above = over).
func BenchmarkReceive200Concurrent(b *testing.B) {
	const concurrent = 200
	cfg := testenv.AWS(b)
	res := testenv.Provision(b)
	var ddbOps, sqsOps atomic.Int64
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, counting(&ddbOps)) })
	q := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.APIOptions = append(o.APIOptions, counting(&sqsOps)) })
	store := &tokenstore.Store{DB: db, Table: res.TableName}
	if _, err := store.Install(b.Context(), tokenstore.Installation{ID: acme, AccessToken: "v1u:a", RefreshToken: "1:1:r",
		APIDomain: "https://acme.pipedrive.com", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	src := &clientcreds.Source{Client: secretsmanager.NewFromConfig(cfg), SecretID: res.SecretID}
	if _, err := src.Load(b.Context()); err != nil { // a warm function has its secret cached
		b.Fatal(err)
	}
	h := &handler{creds: src, events: store, jobs: &jobs.Enqueuer{SQS: q, QueueURL: res.JobsQueueURL},
		log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	auth := basic(creds.User, creds.Password)
	ddbOps.Store(0)
	sqsOps.Store(0)
	var durations []time.Duration
	var mu sync.Mutex
	deliveries := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for k := range concurrent {
			wg.Go(func() {
				req := events.APIGatewayV2HTTPRequest{Headers: map[string]string{"authorization": auth},
					Body: v2(fmt.Sprintf("bench-%d-%d", i, k), "create", 1)}
				req.RequestContext.HTTP.Method = http.MethodPost
				start := time.Now()
				resp, err := h.handle(context.Background(), req)
				d := time.Since(start)
				if err != nil || resp.StatusCode != 200 {
					b.Errorf("delivery = %d %v, want 200", resp.StatusCode, err)
				}
				mu.Lock()
				durations = append(durations, d)
				mu.Unlock()
			})
		}
		wg.Wait()
		deliveries += concurrent
	}
	b.StopTimer()
	slices.Sort(durations)
	p := func(q float64) float64 {
		return float64(durations[int(q*float64(len(durations)-1))].Microseconds()) / 1000
	}
	ddb := float64(ddbOps.Load()) / float64(deliveries)
	sq := float64(sqsOps.Load()) / float64(deliveries)
	b.ReportMetric(p(0.50), "p50_ms")
	b.ReportMetric(p(0.99), "p99_ms")
	b.ReportMetric(ddb, "ddb_req/delivery")
	b.ReportMetric(sq, "sqs_req/delivery")
	const ddbGoal, sqsGoal = 2, 1
	b.ReportMetric(ddb/ddbGoal, "ddb_ratio_to_goal")
	b.ReportMetric(sq/sqsGoal, "sqs_ratio_to_goal")
	b.Logf("webhook-bench deliveries=%d concurrent=%d p50=%.1fms p99=%.1fms ddb_per_delivery=%.2f (goal %d, ratio %.2f) sqs_per_delivery=%.2f (goal %d, ratio %.2f)",
		deliveries, concurrent, p(0.50), p(0.99), ddb, ddbGoal, ddb/ddbGoal, sq, sqsGoal, sq/sqsGoal)
}
