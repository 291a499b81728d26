// Package refreshbench measures the token refresher: how close a scheduled run comes to the
// physical floor of refreshing N installations against a token endpoint answering after L
// with C calls in flight (N·L/C), what each refresh costs in token calls and DynamoDB
// requests, also with several refreshers racing and with the fan-out over the due shards; and,
// on a simulated clock over 30 days, how many token calls idle and active installations cost
// under the adaptive refresh and how many jobs found an expired token.
//
// It runs the real code: refresh.Run, refresh.Refresher, tokenstore.Store against moto, the
// Pipedrive simulator's token endpoint with a latency fault, and pdwork's Session for the
// simulated jobs. cmd/refreshbench (make bench-refresh) prints its lines; a smoke test runs
// small scenarios so the machinery cannot rot. Each scenario prints exactly one line, in a form
// compared across commits.
package refreshbench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// Client credentials the simulator is started with (never real ones).
const (
	clientID     = "refreshbench-client"
	clientSecret = "refreshbench-secret"
)

// Throughput is one throughput scenario.
type Throughput struct {
	// N installations are due at once; each token call takes L; C calls run at once per run.
	N int
	L time.Duration
	C int
	// Racers is how many scheduled runs start at the same moment (1: one).
	Racers int
	// FanOut hands the shards to parallel runs (in-process stand-ins for the refresher's
	// asynchronous self-invocations) when more than FanOutAbove are due.
	FanOut      bool
	FanOutAbove int
	// Timeout is each run's deadline, as the function's (120 s when zero).
	Timeout time.Duration
}

// ThroughputResult is what one throughput scenario measured.
type ThroughputResult struct {
	Throughput
	Wall, Floor      time.Duration
	Refreshed        int
	TokenCalls       int
	DynamoDBRequests int
	// Runs is how many scheduled runs (each over every shard) it took to refresh everything.
	Runs int
	// FannedOut is the most shards one scheduled run handed to parallel runs (0: none). Each
	// of those runs is its own invocation with its own C token calls in flight, as deployed.
	FannedOut int
}

// Line is the scenario's one output line:
//
//	refresh-bench N=1000 L=200ms C=8 wall=… floor=… ratio=… token_calls_per_due=… ddb_per_refresh=…
//
// with " racers=4" or " fanout=8" inserted after C when they apply. C is per run (per
// invocation): with fanout=8, eight runs have C token calls in flight each; floor stays N·L/C.
func (r ThroughputResult) Line() string {
	extra := ""
	if r.Racers > 1 {
		extra += fmt.Sprintf(" racers=%d", r.Racers)
	}
	if r.FannedOut > 0 {
		extra += fmt.Sprintf(" fanout=%d", r.FannedOut)
	}
	return fmt.Sprintf("refresh-bench N=%d L=%s C=%d%s wall=%s floor=%s ratio=%.2f token_calls_per_due=%.2f ddb_per_refresh=%.2f",
		r.N, r.L, r.C, extra, r.Wall.Round(100*time.Millisecond), r.Floor.Round(100*time.Millisecond),
		r.Wall.Seconds()/r.Floor.Seconds(), float64(r.TokenCalls)/float64(r.N), float64(r.DynamoDBRequests)/float64(max(r.Refreshed, 1)))
}

// AWS is where the throughput scenarios find DynamoDB: a moto endpoint's configuration.
type AWS struct {
	Config aws.Config
	// Serial serialises writes (moto applies a conditional write in two unlocked steps; only
	// one write at a time makes its conditions atomic, as DynamoDB's are). Needed when
	// refreshers race for the same items.
	Serial bool
}

// RunThroughput provisions a fresh table from template.yaml, installs N installations all due
// now (warm, their access token expiring in 5 minutes), and runs scheduled runs until none is
// due, measuring the wall time from the first run's start.
func RunThroughput(ctx context.Context, env AWS, sc Throughput) (ThroughputResult, error) {
	res := ThroughputResult{Throughput: sc}
	if sc.Racers < 1 {
		sc.Racers, res.Racers = 1, 1
	}
	timeout := sc.Timeout
	if timeout == 0 {
		timeout = 120 * time.Second
	}
	prefix := fmt.Sprintf("rb%d-%s-", sc.N, strings.ToLower(randomSuffix()))
	resources, err := infra.Provision(ctx, env.Config, infra.NamesWithPrefix(prefix),
		infra.ClientCredentials{ClientID: clientID, ClientSecret: clientSecret, StateKey: "refreshbench-state-key"})
	if err != nil {
		return res, fmt.Errorf("refreshbench: provision: %w", err)
	}
	defer func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = resources.Teardown(tctx, env.Config)
	}()

	sim := pdsim.New(pdsim.Config{ClientID: clientID, ClientSecret: clientSecret, RotateRefreshTokens: true})
	hs := httptest.NewServer(sim)
	defer hs.Close()
	sim.SetBaseURL(hs.URL)

	raw := dynamodb.NewFromConfig(env.Config)
	setup := &tokenstore.Store{DB: raw, Table: resources.TableName}
	if err := installDue(ctx, sim, setup, sc.N); err != nil {
		return res, err
	}

	var db tokenstore.DynamoDB = raw
	if env.Serial {
		db = &serial{DynamoDB: raw}
	}
	counted := &counting{DynamoDB: db}
	store := &tokenstore.Store{DB: counted, Table: resources.TableName}
	oauth := &pdoauth.Client{BaseURL: hs.URL, Credentials: pdoauth.StaticCredentials(clientID, clientSecret), HTTP: hs.Client(), AllowLoopback: true}
	sim.Inject(pdsim.Fault{Path: "/oauth/token", Latency: sc.L})

	// As functions/refresher wires it: C token calls in flight per run, twice as many
	// refreshes, so the store writes overlap the calls.
	cfg := refresh.RunConfig{Concurrency: 2 * sc.C, Shards: store, FanOutAbove: sc.FanOutAbove}
	var (
		mu    sync.Mutex
		total refresh.Summary
	)
	add := func(s refresh.Summary) {
		mu.Lock()
		defer mu.Unlock()
		total.Refreshed += s.Refreshed
	}
	run := func(owner string, shard int, fan refresh.FanOut) error {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		c := cfg
		c.Owner, c.FanOut = owner, fan
		r := &refresh.Refresher{OAuth: refresh.LimitCalls(oauth, sc.C), Store: store, Owner: owner}
		rep, err := refresh.Run(rctx, store, shard, r, c)
		add(rep.Summary)
		mu.Lock()
		res.FannedOut = max(res.FannedOut, rep.FannedOut)
		mu.Unlock()
		return err
	}

	start := time.Now()
	var end time.Time // when the last run returned; the check for what is left is not a run's work
	for res.Runs = 1; ; res.Runs++ {
		var (
			wg       sync.WaitGroup
			errs     = make(chan error, sc.Racers+store.DueShards())
			invoked  sync.WaitGroup
			fan      refresh.FanOut
			dispatch = func(shard int) {
				invoked.Go(func() { errs <- run(fmt.Sprintf("shard-%d", shard), shard, nil) })
			}
		)
		if sc.FanOut {
			fan = fanOutFunc(dispatch)
		}
		for i := range sc.Racers {
			wg.Go(func() { errs <- run(fmt.Sprintf("refresher-%d", i), refresh.AllShards, fan) })
		}
		wg.Wait()
		invoked.Wait()
		end = time.Now()
		close(errs)
		for err := range errs {
			if err != nil {
				return res, err
			}
		}
		left, err := setup.Due(ctx, time.Now(), 1)
		if err != nil {
			return res, err
		}
		if len(left) == 0 || res.Runs >= 5 {
			break
		}
	}
	res.Wall = end.Sub(start)
	res.Floor = time.Duration(float64(sc.N) * float64(sc.L) / float64(sc.C))
	res.Refreshed = total.Refreshed
	res.TokenCalls = sim.Counters().TokenByGrant["refresh_token"]
	res.DynamoDBRequests = int(counted.n.Load())
	return res, nil
}

// fanOutFunc is a refresh.FanOut that starts the shard's run in a goroutine: what the
// refresher's asynchronous self-invocation does, in one process.
type fanOutFunc func(shard int)

func (f fanOutFunc) Dispatch(_ context.Context, shard int) error {
	f(shard)
	return nil
}

// installDue installs n simulator users' tokens, each access token expiring in 5 minutes (due
// now: refresh.Lead is 10), 16 at a time.
func installDue(ctx context.Context, sim *pdsim.Server, store *tokenstore.Store, n int) error {
	ids := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range ids {
				if err := installOne(ctx, sim, store, i, time.Now().Add(5*time.Minute)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range n {
		ids <- i
	}
	close(ids)
	wg.Wait()
	close(errs)
	return <-errs
}

// user is the i-th installation's simulator user.
func user(i int) pdsim.User {
	return pdsim.User{ID: int64(100000 + i), CompanyID: int64(500000 + i/10), CompanyDomain: fmt.Sprintf("c%d", i/10),
		CompanyName: "Bench", Name: "U", Email: "u@bench.example"}
}

func installOne(ctx context.Context, sim *pdsim.Server, store *tokenstore.Store, i int, expires time.Time) error {
	u := user(i)
	if err := sim.AddUser(u); err != nil {
		return err
	}
	tok, err := sim.IssueToken(u.ID)
	if err != nil {
		return err
	}
	_, err = store.Install(ctx, installation.Installation{
		ID:          installation.ID{CompanyID: u.CompanyID, UserID: u.ID},
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: tok.APIDomain,
		Scopes: strings.Split(tok.Scope, ","), ExpiresAt: expires,
	})
	return err
}

// counting counts the DynamoDB requests the refresh makes (calls, not SDK retries).
type counting struct {
	tokenstore.DynamoDB
	n atomic.Int64
}

func (c *counting) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.n.Add(1)
	return c.DynamoDB.GetItem(ctx, in, o...)
}

func (c *counting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.n.Add(1)
	return c.DynamoDB.PutItem(ctx, in, o...)
}

func (c *counting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.n.Add(1)
	return c.DynamoDB.UpdateItem(ctx, in, o...)
}

func (c *counting) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.n.Add(1)
	return c.DynamoDB.DeleteItem(ctx, in, o...)
}

func (c *counting) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.n.Add(1)
	return c.DynamoDB.Query(ctx, in, o...)
}

// serial lets one write reach moto at a time (see AWS.Serial); reads stay concurrent.
type serial struct {
	tokenstore.DynamoDB
	mu sync.Mutex
}

func (s *serial) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.DynamoDB.PutItem(ctx, in, o...)
}

func (s *serial) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.DynamoDB.UpdateItem(ctx, in, o...)
}

func (s *serial) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.DynamoDB.DeleteItem(ctx, in, o...)
}
