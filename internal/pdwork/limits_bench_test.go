package pdwork_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// Benchmark shape: 2,000 jobs for one user, burst limit 80 per 2 s, several worker instances.
const (
	benchJobs      = 2000
	benchLimit     = 80
	benchInstances = 4
	// benchSpeed runs the simulated clock this many times faster than the real one (the
	// simulator's windows, the workers' clocks and waits alike), so the 50 s floor takes
	// 50/benchSpeed s of real time.
	benchSpeed = 0.5
)

// scaledClock is real time sped up: Now advances benchSpeed simulated seconds per real second.
type scaledClock struct {
	realStart time.Time
	simStart  time.Time
	speed     float64
}

func (c *scaledClock) Now() time.Time {
	return c.simStart.Add(time.Duration(float64(time.Since(c.realStart)) * c.speed))
}

// Sleep waits a simulated duration.
func (c *scaledClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(time.Duration(float64(d) / c.speed))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// countingDB counts DynamoDB requests.
type countingDB struct {
	tokenstore.DynamoDB
	n atomic.Int64
}

func (c *countingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.n.Add(1)
	return c.DynamoDB.GetItem(ctx, in, o...)
}

func (c *countingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.n.Add(1)
	return c.DynamoDB.PutItem(ctx, in, o...)
}

func (c *countingDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.n.Add(1)
	return c.DynamoDB.UpdateItem(ctx, in, o...)
}

func (c *countingDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.n.Add(1)
	return c.DynamoDB.DeleteItem(ctx, in, o...)
}

func (c *countingDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.n.Add(1)
	return c.DynamoDB.Query(ctx, in, o...)
}

// BenchmarkBurstOneUser runs 2,000 api_call jobs for one user through benchInstances worker
// instances (each an engine with its own Limits, sharing the tokens table on moto) against the
// simulator at a burst limit of 80 per 2 s, and reports the run's simulated wall time against
// the plan-rate floor (2,000 / 40 per s = 50 s), the 429s, the dead letters and the DynamoDB
// requests per job.
func BenchmarkBurstOneUser(b *testing.B) {
	b.Setenv("PIPEDRIVE_ALLOW_LOOPBACK", "true")
	cfg := testenv.AWS(b)
	res := testenv.Provision(b)
	for b.Loop() {
		clock := &scaledClock{realStart: time.Now(), simStart: lt0, speed: benchSpeed}
		sim := pdsimtest.New(b, pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret, Now: clock.Now,
			RateLimit: benchLimit, AccessTokenTTL: 24 * time.Hour})
		// Not testenv's serialised writer: every key written here is a job's own claim or the
		// company's gate record, whose conditions tolerate moto's unlocked check-then-write,
		// and serialising would make moto, not pacing, the bottleneck.
		db := &countingDB{DynamoDB: dynamodb.NewFromConfig(cfg)}
		store := &tokenstore.Store{DB: db, Table: res.TableName, Now: clock.Now}
		tok, err := sim.IssueToken(pdsim.DefaultUserID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := store.Install(b.Context(), installation.Installation{
			ID:          installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID},
			AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: tok.APIDomain,
			Scopes: strings.Split(tok.Scope, ","), ExpiresAt: clock.Now().Add(24 * time.Hour),
		}); err != nil {
			b.Fatal(err)
		}
		creds := &clientcreds.Source{Client: secretsmanager.NewFromConfig(cfg), SecretID: res.SecretID}
		q := &memQueue{clock: clock, msgs: map[string]*memMsg{}}
		for i := range benchJobs {
			body, _ := json.Marshal(jobs.Job{ID: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i), Kind: jobs.KindAPICall,
				CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID, Method: "GET", Path: "/api/v2/deals"})
			_, _ = q.SendMessage(b.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(jobsURL), MessageBody: aws.String(string(body))})
		}
		al := &alertLog{}
		var engines []*worker.Engine
		for range benchInstances {
			limits := &pdwork.Limits{Gates: store, Alerts: alerts.Notifier{Sender: al}, Now: clock.Now, Sleep: clock.Sleep}
			sessions := &pdwork.Sessions{
				Installations: store,
				Refresher: &refresh.Refresher{
					OAuth: &pdoauth.Client{BaseURL: sim.URL, Credentials: creds.OAuthCredentials, HTTP: sim.HTTP.Client()},
					Store: store, Owner: "bench", Now: clock.Now,
				},
				API: &pdapi.Client{HTTP: sim.HTTP.Client()}, Limits: limits, Now: clock.Now,
			}
			engines = append(engines, &worker.Engine{
				Name:    "bench",
				Runners: map[string]worker.Runner{jobs.KindAPICall: &pdwork.APICall{Sessions: sessions}},
				Claims:  store, Queue: q, Alerts: alerts.Notifier{Sender: al},
				Config: worker.Config{JobsQueueURL: jobsURL, DeadLetterQueueURL: dlqURL, MaxReceives: res.MaxReceiveCount, Now: clock.Now},
			})
		}
		sim.ResetCounters()
		db.n.Store(0)
		simStart, realStart := clock.Now(), time.Now()
		var wg sync.WaitGroup
		for _, e := range engines {
			wg.Go(func() {
				for {
					ev, done := q.receive(10)
					if done {
						return
					}
					if len(ev.Records) == 0 {
						time.Sleep(2 * time.Millisecond)
						continue
					}
					q.settle(ev, e.RunBatch(b.Context(), ev))
				}
			})
		}
		wg.Wait()
		simWall, realWall := clock.Now().Sub(simStart), time.Since(realStart)
		c := sim.Counters()
		calls := 0
		for _, n := range c.APIByStatus {
			calls += n
		}
		floor := time.Duration(benchJobs/(benchLimit/2)) * time.Second
		ratio := simWall.Seconds() / floor.Seconds()
		perJob := float64(db.n.Load()) / benchJobs
		b.ReportMetric(ratio, "floor-ratio")
		b.ReportMetric(float64(c.APIByStatus[429]), "429s")
		b.ReportMetric(float64(len(q.dead)), "dead-letters")
		b.ReportMetric(perJob, "dynamodb-req/job")
		b.Logf("%d jobs, one user, burst %d/2 s, %d instances × %d concurrent: wall %.1f s simulated (%.1f s real; simulator and workers run at %.2g× the real clock) "+
			"against the plan-rate floor %.0f s (%d / %d per s): ratio %.2f; 429s %d of %d calls (%.2f%%); dead letters %d; DynamoDB requests per job %.2f; alerts %v",
			benchJobs, benchLimit, benchInstances, worker.DefaultConcurrency, simWall.Seconds(), realWall.Seconds(), benchSpeed,
			floor.Seconds(), benchJobs, benchLimit/2, ratio, c.APIByStatus[429], calls, 100*float64(c.APIByStatus[429])/float64(max(calls, 1)),
			len(q.dead), perJob, slices.Compact(al.reasons()))
		if c.APIByStatus[200] != benchJobs {
			b.Errorf("calls answered 200 = %d, want %d (%v)", c.APIByStatus[200], benchJobs, c.APIByStatus)
		}
	}
}
