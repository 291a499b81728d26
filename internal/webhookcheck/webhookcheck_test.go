package webhookcheck_test

import (
	"context"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/pdkit/pipedrive-lambda-kit/internal/fakeclock"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhookcheck"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// counting counts the requests a client sends.
func counting(n *atomic.Int64) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("count", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			n.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	}
}

// TestSweepQueuesEachInstallationOnceADay runs the sweep every five minutes of two days
// against moto (the tokens table's refresh-due index, the jobs queue): each active
// installation gets one check_webhooks job per day, named for the day, in the hour of its
// shard; an uninstalled one gets none. It logs the sweep's AWS requests per installation.
func TestSweepQueuesEachInstallationOnceADay(t *testing.T) {
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	start := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	clock := fakeclock.New(start)
	var ddbOps, sqsOps atomic.Int64
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, counting(&ddbOps)) })
	q := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.APIOptions = append(o.APIOptions, counting(&sqsOps)) })
	store := &tokenstore.Store{DB: db, Table: res.TableName, Now: clock.Now}
	const installed = 24
	var ids []tokenstore.InstallationID
	for i := range installed + 1 {
		id := tokenstore.InstallationID{CompanyID: 100 + int64(i), UserID: 7}
		if _, err := store.Install(t.Context(), tokenstore.Installation{ID: id, AccessToken: "v1u:a", RefreshToken: "1:1:r",
			APIDomain: "https://acme.pipedrive.com", ExpiresAt: start.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	gone := ids[installed]
	if _, err := store.Uninstall(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	ddbOps.Store(0)
	s := &webhookcheck.Sweep{Store: store, Marks: store, Jobs: &jobs.Enqueuer{SQS: q, QueueURL: res.JobsQueueURL, Now: clock.Now}, Now: clock.Now}
	runs, queued := 0, 0
	for day := range 2 {
		for range 24 * 12 {
			sum, err := s.Run(t.Context())
			if err != nil {
				t.Fatalf("Run at %s = %v", clock.Now(), err)
			}
			for _, shard := range sum.Shards {
				if h := webhookcheck.ShardHour(shard, store.DueShards()); h != clock.Now().Hour() {
					t.Errorf("shard %d swept at %s, want at hour %d", shard, clock.Now(), h)
				}
			}
			queued += sum.Queued
			runs++
			clock.Advance(5 * time.Minute)
		}
		msgs := testenv.ReceiveAll(t, cfg, res.JobsQueueURL, -1, time.Second)
		dayText := start.AddDate(0, 0, day).Format(time.DateOnly)
		var got []string
		for _, m := range msgs {
			j, err := jobs.Parse(*m.Body)
			if err != nil || j.Kind != jobs.KindCheckWebhooks {
				t.Fatalf("queued %s (%v), want check_webhooks jobs", *m.Body, err)
			}
			got = append(got, j.ID)
		}
		var want []string
		for _, id := range ids[:installed] {
			want = append(want, jobs.CheckWebhooks(id, dayText).ID)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("day %d: jobs queued = %v, want one check per active installation: %v", day+1, got, want)
		}
	}
	checks := float64(2 * installed)
	t.Logf("webhook-check sweep: %d runs, %d checks queued; per installation checked: %.2f DynamoDB requests (one Query and one mark per shard and day, shared), %.2f SQS sends",
		runs, queued, float64(ddbOps.Load())/checks, float64(sqsOps.Load())/checks)
	if queued != 2*installed {
		t.Errorf("checks queued = %d, want %d", queued, 2*installed)
	}
}
