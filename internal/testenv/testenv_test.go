package testenv_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// helperEnv makes the test binary act as a function bootstrap instead of running tests.
const helperEnv = "TESTENV_HELPER_PROCESS"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperProcess())
	}
	os.Exit(testenv.Main(m))
}

// helperProcess configures AWS from the environment alone, the way a function's main does,
// and reports what it could read, without printing secret values.
func helperProcess() int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load config:", err)
		return 2
	}
	sec, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(os.Getenv("CLIENT_SECRET_ID"))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "get secret:", err)
		return 2
	}
	var creds infra.ClientCredentials
	if err := json.Unmarshal([]byte(aws.ToString(sec.SecretString)), &creds); err != nil {
		fmt.Fprintln(os.Stderr, "secret JSON:", err)
		return 2
	}
	table, err := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(os.Getenv("TOKENS_TABLE"))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "describe table:", err)
		return 2
	}
	if _, err := sqs.NewFromConfig(cfg).SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(os.Getenv("JOBS_QUEUE_URL")), MessageBody: aws.String("from-helper")}); err != nil {
		fmt.Fprintln(os.Stderr, "send job:", err)
		return 2
	}
	if _, err := sns.NewFromConfig(cfg).Publish(ctx, &sns.PublishInput{TopicArn: aws.String(os.Getenv("ALERTS_TOPIC_ARN")), Subject: aws.String("from-helper"), Message: aws.String("hello")}); err != nil {
		fmt.Fprintln(os.Stderr, "publish alert:", err)
		return 2
	}
	fmt.Printf("client_id=%s table_status=%s\n", creds.ClientID, table.Table.TableStatus)
	return 0
}

// TestEnvRunsASubprocess runs this test binary as a bootstrap would run: configured only by
// Env, it must reach the table, the secret, the queue and the topic.
func TestEnvRunsASubprocess(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	r := testenv.Provision(t)
	inbox := testenv.SubscribeAlerts(t, cfg, r.AlertsTopicARN)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), testenv.Env(t, r)...)
	cmd.Env = append(cmd.Env, helperEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("helper process = %v, stderr:\n%s", err, stderr)
	}
	if got, want := strings.TrimSpace(string(out)), "client_id="+testenv.ClientID+" table_status=ACTIVE"; got != want {
		t.Errorf("helper process printed %q, want %q", got, want)
	}
	jobs := testenv.ReceiveAll(t, cfg, r.JobsQueueURL, 1, 5*time.Second)
	if len(jobs) != 1 || aws.ToString(jobs[0].Body) != "from-helper" {
		t.Errorf("jobs queue after the helper = %d messages, want its one job", len(jobs))
	}
	if alerts := inbox.Wait(t, 1, 5*time.Second); alerts[0].Subject != "from-helper" {
		t.Errorf("alert from the helper has subject %q, want from-helper", alerts[0].Subject)
	}
}

func TestEnvNamesEndpointAndResources(t *testing.T) {
	t.Parallel()
	r := testenv.Provision(t)
	env := map[string]string{}
	for _, kv := range testenv.Env(t, r) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	want := map[string]string{
		"AWS_ENDPOINT_URL":      testenv.Endpoint(t),
		"AWS_REGION":            testenv.Region,
		"AWS_ACCESS_KEY_ID":     testenv.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": testenv.SecretAccessKey,
		"TOKENS_TABLE":          r.TableName,
		"CLIENT_SECRET_ID":      r.SecretID,
		"JOBS_QUEUE_URL":        r.JobsQueueURL,
		"ALERTS_TOPIC_ARN":      r.AlertsTopicARN,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("Env()[%s] = %q, want %q", k, env[k], v)
		}
	}
}

func TestAlertInbox(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	r := testenv.Provision(t)
	inbox := testenv.SubscribeAlerts(t, cfg, r.AlertsTopicARN)
	client := sns.NewFromConfig(cfg)

	if got := inbox.Drain(t); len(got) != 0 {
		t.Fatalf("Drain() of a new inbox = %+v, want none", got)
	}
	for i := range 3 {
		_, err := client.Publish(context.Background(), &sns.PublishInput{
			TopicArn: aws.String(r.AlertsTopicARN),
			Subject:  aws.String("alert " + strconv.Itoa(i)),
			Message:  aws.String(`{"n":` + strconv.Itoa(i) + `}`),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{
				"reason": {DataType: aws.String("String"), StringValue: aws.String("refresh_failed")},
			},
		})
		if err != nil {
			t.Fatalf("Publish(%d) = %v", i, err)
		}
	}
	got := inbox.Wait(t, 2, 5*time.Second)
	got = append(got, inbox.Drain(t)...)
	if len(got) != 3 {
		t.Fatalf("Wait(2) + Drain() = %d alerts, want 3", len(got))
	}
	seen := map[string]bool{}
	for _, a := range got {
		seen[a.Subject] = true
		if !strings.HasPrefix(a.Message, `{"n":`) || a.Attributes["reason"] != "refresh_failed" {
			t.Errorf("alert %q = %+v, want the published JSON message and reason=refresh_failed", a.Subject, a)
		}
	}
	for i := range 3 {
		if s := "alert " + strconv.Itoa(i); !seen[s] {
			t.Errorf("alert %q not received; got %v", s, seen)
		}
	}
	if rest := inbox.Drain(t); len(rest) != 0 {
		t.Errorf("Drain() after reading everything = %d alerts, want 0", len(rest))
	}
}

func TestReceiveAllDeletes(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	r := testenv.Provision(t)
	q := sqs.NewFromConfig(cfg)
	for i := range 12 {
		if _, err := q.SendMessage(context.Background(), &sqs.SendMessageInput{
			QueueUrl: aws.String(r.JobsQueueURL), MessageBody: aws.String("job " + strconv.Itoa(i)),
		}); err != nil {
			t.Fatalf("SendMessage(%d) = %v", i, err)
		}
	}
	if got := testenv.ReceiveAll(t, cfg, r.JobsQueueURL, 11, 5*time.Second); len(got) != 11 {
		t.Errorf("ReceiveAll(max 11) = %d messages, want 11", len(got))
	}
	if got := testenv.ReceiveAll(t, cfg, r.JobsQueueURL, 5, 0); len(got) != 1 {
		t.Errorf("ReceiveAll(wait 0) after taking 11 of 12 = %d messages, want 1", len(got))
	}
	begin := time.Now()
	if got := testenv.ReceiveAll(t, cfg, r.JobsQueueURL, 1, 1500*time.Millisecond); len(got) != 0 {
		t.Errorf("ReceiveAll on an emptied queue = %d messages, want 0 (received messages are deleted)", len(got))
	}
	if took := time.Since(begin); took < time.Second || took > 5*time.Second {
		t.Errorf("ReceiveAll(wait 1.5s) on an empty queue returned after %v, want about 1.5s", took)
	}
}

// TestParallelProvisionsAreDistinct provisions in two parallel tests: no resource may be
// shared, and data written through one must not show in the other.
func TestParallelProvisionsAreDistinct(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		got []*infra.Resources
	)
	t.Run("group", func(t *testing.T) {
		for i := range 2 {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				r := testenv.Provision(t)
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
				cfg := testenv.AWS(t)
				if _, err := sqs.NewFromConfig(cfg).SendMessage(context.Background(), &sqs.SendMessageInput{
					QueueUrl: aws.String(r.JobsQueueURL), MessageBody: aws.String("mine"),
				}); err != nil {
					t.Fatalf("SendMessage = %v", err)
				}
				if msgs := testenv.ReceiveAll(t, cfg, r.JobsQueueURL, 5, 0); len(msgs) != 1 {
					t.Errorf("own jobs queue holds %d messages, want exactly the one sent here", len(msgs))
				}
			})
		}
	})
	if len(got) != 2 {
		t.Fatalf("provisioned %d stacks, want 2", len(got))
	}
	a, b := got[0], got[1]
	pairs := [][2]string{
		{a.TableName, b.TableName}, {a.SecretID, b.SecretID}, {a.JobsQueueURL, b.JobsQueueURL},
		{a.DeadLetterQueueURL, b.DeadLetterQueueURL}, {a.AlertsTopicARN, b.AlertsTopicARN},
	}
	for _, p := range pairs {
		if p[0] == p[1] || p[0] == "" {
			t.Errorf("parallel Provision calls share %q", p[0])
		}
	}
}

func TestPrefixFitsNameLimits(t *testing.T) {
	long := strings.Repeat("x", 300)
	t.Run(long+"/with spaces & symbols", func(t *testing.T) {
		p := testenv.Prefix(t)
		if err := infra.NamesWithPrefix(p).Validate(); err != nil {
			t.Errorf("NamesWithPrefix(Prefix()).Validate() = %v, want nil", err)
		}
		if n := len(p + "alerts-inbox"); n > 80 {
			t.Errorf("alert inbox queue name has %d characters, want at most 80", n)
		}
		if q := testenv.Prefix(t); q == p {
			t.Errorf("Prefix() twice = %q both times, want distinct", p)
		}
	})
}

func TestFreePort(t *testing.T) {
	port := testenv.FreePort(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("listen on FreePort() %d = %v", port, err)
	}
	l.Close()
}

// TestSerialDynamoDBWritesOneAtATime races conditional writes on one item through two
// SerialDynamoDB values, both reaching moto via a proxy that counts requests in flight: no
// two writes may overlap, even from different wrappers (the lock is the binary's, not the
// wrapper's), and in every round exactly one writer wins, as on DynamoDB.
func TestSerialDynamoDBWritesOneAtATime(t *testing.T) {
	r := testenv.Provision(t)
	proxy := newInFlightProxy(t, testenv.Endpoint(t))
	client := func() *dynamodb.Client {
		return dynamodb.NewFromConfig(testenv.AWS(t), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(proxy.URL) })
	}
	dbs := []*testenv.SerialDynamoDB{testenv.SerialWrites(client()), testenv.SerialWrites(client())}
	ctx := t.Context()
	key := map[string]dbtypes.AttributeValue{"pk": &dbtypes.AttributeValueMemberS{Value: "serial-race"}}
	const rounds, writers = 5, 16
	for round := range rounds {
		var (
			wg   sync.WaitGroup
			wins atomic.Int32
		)
		for w := range writers {
			wg.Go(func() {
				_, err := dbs[w%len(dbs)].UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName:                 aws.String(r.TableName),
					Key:                       key,
					UpdateExpression:          aws.String("SET #r = :next"),
					ConditionExpression:       aws.String("attribute_not_exists(#r) OR #r = :cur"),
					ExpressionAttributeNames:  map[string]string{"#r": "serial_round"},
					ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":cur": num(round), ":next": num(round + 1)},
				})
				var failed *dbtypes.ConditionalCheckFailedException
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.As(err, &failed):
					t.Errorf("UpdateItem(round %d) = %v, want nil or ConditionalCheckFailedException", round, err)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Errorf("round %d: %d of %d conditional writers won, want exactly 1", round, n, writers)
		}
	}
	if got := proxy.max(); got != 1 {
		t.Errorf("SerialDynamoDB let %d writes reach moto at once, want 1", got)
	}
	if got := proxy.requests.Load(); got != rounds*writers {
		t.Errorf("proxy saw %d requests, want %d: the test did not go through it", got, rounds*writers)
	}
}

// inFlightProxy forwards to moto and records the most requests it had in flight at once.
type inFlightProxy struct {
	URL                string
	inFlight, requests atomic.Int32

	mu          sync.Mutex
	maxInFlight int32
}

// max returns the most requests that were in flight at once.
func (p *inFlightProxy) max() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxInFlight
}

func newInFlightProxy(t *testing.T, target string) *inFlightProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("url.Parse(%q) = %v", target, err)
	}
	p := &inFlightProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		n := p.inFlight.Add(1)
		defer p.inFlight.Add(-1)
		p.mu.Lock()
		p.maxInFlight = max(p.maxInFlight, n)
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func num(n int) dbtypes.AttributeValue {
	return &dbtypes.AttributeValueMemberN{Value: strconv.Itoa(n)}
}

// TestBufferConcurrentWrites writes lines from many goroutines while reading: under -race a
// missing lock fails, and every line must arrive whole.
func TestBufferConcurrentWrites(t *testing.T) {
	var b testenv.Buffer
	const writers, lines = 8, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(&b, "w%d-%d\n", w, i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("Buffer holds %d lines, want %d", len(got), writers*lines)
	}
	seen := map[string]bool{}
	for _, l := range got {
		seen[l] = true
	}
	for w := range writers {
		for i := range lines {
			if l := fmt.Sprintf("w%d-%d", w, i); !seen[l] {
				t.Fatalf("Buffer.String() lacks line %q", l)
			}
		}
	}
}

// TestFunctionEnv checks that a function gets moto's settings and the template's variables,
// resources resolved and parameters at their defaults.
func TestFunctionEnv(t *testing.T) {
	t.Parallel()
	r := testenv.Provision(t)
	env := testenv.FunctionEnv(t, r, "ApiCallFunction")
	for _, want := range []string{
		"AWS_ENDPOINT_URL=" + testenv.Endpoint(t),
		"JOBS_DLQ_URL=" + r.DeadLetterQueueURL,
		"JOBS_QUEUE_URL=" + r.JobsQueueURL,
		"JOBS_MAX_RECEIVES=" + strconv.Itoa(r.MaxReceiveCount),
		"PIPEDRIVE_OAUTH_URL=https://oauth.pipedrive.com",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("FunctionEnv(ApiCallFunction) = %v, want it to hold %s", env, want)
		}
	}
	// RedirectURI defaults to empty: the callback derives its URL from the request's domain.
	if cb := testenv.FunctionEnv(t, r, "CallbackFunction"); !slices.Contains(cb, "REDIRECT_URI=") {
		t.Errorf("FunctionEnv(CallbackFunction) = %v, want it to hold REDIRECT_URI= (empty: derived)", cb)
	}
}
