// Package localstack runs the whole backend on one machine without Docker or an AWS account:
// moto_server for DynamoDB, Secrets Manager, SQS and SNS (resources created from
// template.yaml), the Pipedrive simulator, and every function's real `bootstrap` under the
// AWS Lambda Runtime Interface Emulator (the callback and the webhook receiver behind a local
// HTTP API gateway, the worker fed by the jobs queue, the refresher invoked directly). The
// simulator delivers webhooks to the local receiver. The functions are the kit's own (the empty
// app) or an app's built on the kit (Config.AppDir: `make run` runs examples/dealnotes).
package localstack

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/apigw"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/motoserver"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/sqspoller"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokencrypt"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// Config configures a local stack. The zero value (plus Root) runs on free loopback ports.
type Config struct {
	// Root is the kit's module root (where go.mod is): the emulator is built from it. Empty
	// means the nearest folder holding go.mod, from the working directory up.
	Root string
	// AppDir is the Go module whose functions/<name> main packages are built: an app built on
	// the kit (examples/dealnotes, whose functions start its App through package pdkit). Root
	// (the kit's own functions, the empty app) when empty.
	AppDir string
	// Handlers, when set, runs every function in this process instead of as a bootstrap: it is
	// called once per function (template.yaml's logical id) with the environment the template
	// gives it and the stack's AWS configuration (moto), and returns its handler. Nothing is
	// built and no emulator runs (pdkittest runs an app's handlers this way).
	Handlers func(ctx context.Context, id string, env map[string]string, aws aws.Config) (Invoker, error)
	// WorkDir holds built binaries and moto's log; default Root/.local.
	WorkDir string
	// GatewayAddr is where the HTTP API listens (default 127.0.0.1:0, a free port).
	GatewayAddr string
	// SimulatorAddr is where the Pipedrive simulator listens (default 127.0.0.1:0).
	SimulatorAddr string
	// RotateRefreshTokens sets the simulator's refresh-token rotation.
	RotateRefreshTokens bool
	// App, when set, runs the stack against a real Pipedrive app instead of the simulator:
	// its client id and secret go into the ClientSecret, the functions talk to its OAuth URL,
	// and the callback and webhook URLs are its public redirect URI's. No simulator starts
	// (Stack.Simulator is nil, so Demo cannot run).
	App *App
	// Schedules plays each function's ScheduleV2 events of template.yaml, as EventBridge
	// would: the function is invoked with `{}` every rate() period (cron() schedules are
	// left to explicit invocations). False leaves all invocations to the caller.
	Schedules bool
	// RefreshEvery, when not zero, replaces the period of the schedules played.
	RefreshEvery time.Duration
	// FunctionOutput receives the functions' logs (JSON lines); nil discards.
	FunctionOutput io.Writer
	// Log receives the stack's own events; nil discards.
	Log *slog.Logger
	// WrapSimulator, when set, wraps the embedded simulator's handler (tests record the
	// tokens it hands out, testenv.RecordSecrets); nil serves it as is.
	WrapSimulator func(http.Handler) http.Handler
}

// Stack is a running local stack. Close stops everything it started.
type Stack struct {
	// GatewayURL is the local HTTP API (http://127.0.0.1:port); /oauth/install starts an install.
	GatewayURL string
	// SimulatorURL is the Pipedrive simulator (OAuth server and API domain, admin API at /_sim/).
	SimulatorURL string
	// MotoURL is the AWS endpoint.
	MotoURL string
	// AWS is an SDK configuration pointed at moto.
	AWS aws.Config
	// Resources are the provisioned tables, queues, topic and secret.
	Resources *infra.Resources
	// Simulator is the in-process simulator, for driving faults and uninstall.
	Simulator *pdsim.Server
	// Store reads the tokens table.
	Store *tokenstore.Store
	// Credentials are the app's client credentials, shared by the secret and the simulator.
	Credentials infra.ClientCredentials
	// Refresher is the refresher function; invoke it as EventBridge would (`{}`) or as an
	// operator would (`{"company_id":…,"user_id":…,"force":true}`).
	Refresher *Function
	// Worker is the apicall function. The jobs queue feeds it through an SQS poller; it can
	// also be invoked directly with one job.
	Worker *Function

	// receiverDown makes the gateway answer 503 on WebhooksPath (ReceiverOutage).
	receiverDown atomic.Bool
	closers      []func()
}

// ReceiverOutage takes the webhook receiver's route down (every delivery answered 503, as
// during an outage) or brings it back; the other routes stay up.
func (st *Stack) ReceiverOutage(down bool) { st.receiverDown.Store(down) }

// outage answers 503 on WebhooksPath while the receiver is down, else passes to next.
func (st *Stack) outage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == WebhooksPath && st.receiverDown.Load() {
			http.Error(w, "receiver down", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ExampleAppDir is the worked example app, relative to the kit's root: `make run` and the
// walk-through's test run its functions.
const ExampleAppDir = "examples/dealnotes"

// Invoker runs a function with a JSON event and returns its answer: a bootstrap under the
// emulator (*lambdarun.Function) or a handler in process (aws-lambda-go's lambda.Handler).
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// Function is one function of the stack.
type Function struct {
	// Name is its logical id in template.yaml.
	Name    string
	inv     Invoker
	timeout time.Duration // in process: the template's timeout, as Lambda's deadline
}

// Invoke runs the function with payload and returns its answer; a function error is an error.
func (f *Function) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	return f.inv.Invoke(ctx, payload)
}

// InvokeJSON runs the function with event as JSON and decodes its answer into out (nil skips).
func (f *Function) InvokeJSON(ctx context.Context, event, out any) error {
	payload, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("localstack: invoke %s: marshal event: %w", f.Name, err)
	}
	body, err := f.Invoke(ctx, payload)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("localstack: invoke %s: decode result: %w", f.Name, err)
	}
	return nil
}

// functionDirs maps the template's functions to their code under functions/ (SAM builds
// them through the Makefile's build-<LogicalID> targets).
var functionDirs = map[string]string{
	"CallbackFunction":  "callback",
	"RefresherFunction": "refresher",
	"ApiCallFunction":   "apicall",
	"WebhooksFunction":  "webhooks",
}

// WebhooksPath is the receiver's route on the gateway (template.yaml's WebhooksFunction).
const WebhooksPath = "/pipedrive/webhooks"

// Local defaults for the simulated Pipedrive user who installs the app, and a colleague of
// theirs (same company) who has not installed it: in a team, most changes are a colleague's.
const (
	DemoUserID      int64 = 5206648
	DemoCompanyID   int64 = 3408256
	DemoColleagueID int64 = 7700001
)

// Start brings the stack up: moto, resources, simulator, the callback function under the
// emulator, and the gateway. On error everything already started is stopped.
func Start(ctx context.Context, cfg Config) (st *Stack, err error) {
	if cfg.Root == "" {
		root, err := ModuleRoot()
		if err != nil {
			return nil, err
		}
		cfg.Root = root
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = filepath.Join(cmp.Or(cfg.AppDir, cfg.Root), ".local")
	}
	if cfg.GatewayAddr == "" {
		cfg.GatewayAddr = "127.0.0.1:0"
	}
	if cfg.SimulatorAddr == "" {
		cfg.SimulatorAddr = "127.0.0.1:0"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.FunctionOutput == nil {
		cfg.FunctionOutput = io.Discard
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("localstack: %w", err)
	}
	st = &Stack{}
	defer func() {
		if err != nil {
			st.Close()
			st = nil
		}
	}()

	spec, err := infra.Parse(pdkit.Template)
	if err != nil {
		return nil, fmt.Errorf("localstack: %w", err)
	}
	// Build first: the slowest step, and the one most likely to fail on a broken tree.
	var rie string
	bins := map[string]string{}
	if cfg.Handlers == nil {
		if rie, err = lambdarun.RIEPath(ctx, cfg.Root); err != nil {
			return nil, err
		}
		appDir := cmp.Or(cfg.AppDir, cfg.Root)
		for _, id := range slices.Sorted(maps.Keys(spec.Functions)) {
			dir, ok := functionDirs[id]
			if !ok {
				return nil, fmt.Errorf("localstack: template.yaml defines %s, which localstack cannot build (add it to functionDirs)", id)
			}
			bin, err := lambdarun.Build(ctx, appDir, "./functions/"+dir, filepath.Join(cfg.WorkDir, "bin", dir))
			if err != nil {
				return nil, err
			}
			bins[id] = bin
		}
		cfg.Log.Info("built functions", "rie", rie, "app", appDir, "functions", len(bins))
	}

	moto, err := motoserver.Start(ctx, motoserver.Options{LogFile: filepath.Join(cfg.WorkDir, "moto.log")})
	if err != nil {
		return nil, fmt.Errorf("localstack: %w", err)
	}
	st.closers = append(st.closers, func() { moto.Close() })
	st.MotoURL = moto.URL
	st.AWS = moto.AWSConfig()
	cfg.Log.Info("moto started", "url", moto.URL)

	if cfg.App != nil {
		st.Credentials = cfg.App.credentials()
	} else {
		st.Credentials = infra.ClientCredentials{
			ClientID:     "local-client-id",
			ClientSecret: "local-secret-" + randomHex(16),
			StateKey:     randomHex(32),
		}
	}
	st.Resources, err = spec.Provision(ctx, st.AWS, infra.NamesWithPrefix("pdkit-local-"), st.Credentials)
	if err != nil {
		return nil, fmt.Errorf("localstack: provision: %w", err)
	}
	cfg.Log.Info("resources provisioned", "table", st.Resources.TableName)

	gwListener, err := net.Listen("tcp", cfg.GatewayAddr)
	if err != nil {
		return nil, fmt.Errorf("localstack: gateway listen: %w", err)
	}
	st.closers = append(st.closers, func() { gwListener.Close() })
	st.GatewayURL = "http://" + gwListener.Addr().String()
	redirectURI := st.GatewayURL + "/oauth/callback"

	if cfg.App == nil {
		if err := st.startSimulator(cfg, redirectURI); err != nil {
			return nil, err
		}
	}

	// Each function runs with the timeout and the environment template.yaml gives it, except
	// for what really differs locally: Pipedrive is the simulator, the callback and webhook
	// URLs are the local gateway's (the simulator delivers to the receiver there), and the
	// worker may be invoked directly (the walk-through does; a deployed stack keeps
	// WorkerDirectInvoke off).
	local := map[string]string{
		"PIPEDRIVE_OAUTH_URL": st.SimulatorURL,
		"REDIRECT_URI":        redirectURI,
		"WEBHOOK_URL":         st.GatewayURL + WebhooksPath,
		"DIRECT_INVOKE":       "true",
	}
	if cfg.App != nil {
		maps.Copy(local, cfg.App.env()) // the real app's OAuth server and public URLs
	}
	functions := map[string]*Function{}
	var routes []apigw.Route
	var pollers []*sqspoller.Poller
	type scheduled struct {
		every time.Duration
		fn    *Function
	}
	var schedules []scheduled
	for _, id := range slices.Sorted(maps.Keys(spec.Functions)) {
		def := spec.Functions[id]
		env := st.Resources.FunctionEnv(id)
		for k, v := range local {
			if _, declared := def.Environment[k]; declared {
				env[k] = v
			}
		}
		// The simulator's api_domain is http on loopback, which the functions accept only when
		// told (pdoauth's PIPEDRIVE_ALLOW_LOOPBACK); a real app's never is.
		env["PIPEDRIVE_ALLOW_LOOPBACK"] = strconv.FormatBool(cfg.App == nil || cfg.App.AllowLoopback)
		f := &Function{Name: id}
		if cfg.Handlers != nil {
			if f.inv, err = cfg.Handlers(ctx, id, env, st.AWS); err != nil {
				return nil, fmt.Errorf("localstack: %s: %w", id, err)
			}
			f.timeout = def.Timeout
		} else {
			bf, err := lambdarun.Start(ctx, lambdarun.Options{
				RIE: rie, Bootstrap: bins[id], Name: id, Env: append(moto.Env(), envList(env)...),
				Timeout: def.Timeout, Output: cfg.FunctionOutput,
			})
			if err != nil {
				return nil, err
			}
			st.closers = append(st.closers, func() { bf.Close() })
			f.inv = bf
		}
		functions[id] = f

		// The event sources, from the function's Events.
		for _, r := range def.Routes {
			routes = append(routes, apigw.Route{Method: r.Method, Path: r.Path, Function: f})
		}
		for _, q := range def.Queues {
			url, _ := st.Resources.Ref(q.Queue)
			arn, ok := st.Resources.GetAtt(q.Queue, "Arn")
			if !ok {
				return nil, fmt.Errorf("localstack: %s: SQS event from %s, which infra does not provision", id, q.Queue)
			}
			pollers = append(pollers, &sqspoller.Poller{
				SQS: sqs.NewFromConfig(st.AWS), QueueURL: url, QueueARN: arn, Region: motoserver.Region,
				Function: f, BatchSize: q.BatchSize, WholeBatch: !q.ReportsBatchItemFailures(),
				Log: cfg.Log.With("component", "sqs", "function", id),
			})
		}
		for _, sc := range def.Schedules {
			every, ok := sc.Every()
			if cfg.RefreshEvery > 0 {
				every, ok = cfg.RefreshEvery, true
			}
			if cfg.Schedules && ok {
				schedules = append(schedules, scheduled{every, f})
			}
		}
	}
	st.Refresher, st.Worker = functions["RefresherFunction"], functions["ApiCallFunction"]
	if st.Refresher == nil || st.Worker == nil || len(routes) == 0 {
		return nil, errors.New("localstack: template.yaml lacks the RefresherFunction, the ApiCallFunction or any HttpApi route")
	}

	// The event sources run in the background: the queues feed their functions as Lambda's
	// SQS mappings would, and tickers play the EventBridge schedules.
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range pollers {
		wg.Go(func() { p.Run(bg) })
	}
	for _, sc := range schedules {
		wg.Go(func() { schedule(bg, sc.every, sc.fn, cfg.Log) })
	}
	st.closers = append(st.closers, func() { stopBG(); wg.Wait() })

	serve(st, gwListener, st.outage(&apigw.Gateway{Routes: routes, Log: cfg.Log.With("component", "gateway")}))

	// The functions seal the tokens under the stack's key (TOKENS_KEY_ID): the stack reads them
	// the same way.
	st.Store = &tokenstore.Store{DB: dynamodb.NewFromConfig(st.AWS), Table: st.Resources.TableName,
		Cipher: &tokencrypt.Envelope{KMS: kms.NewFromConfig(st.AWS), KeyID: st.Resources.TokensKeyID}}
	cfg.Log.Info("stack ready", "gateway", st.GatewayURL, "simulator", st.SimulatorURL)
	return st, nil
}

// Close stops everything, in reverse order of starting.
func (st *Stack) Close() {
	if st == nil {
		return
	}
	for i := len(st.closers) - 1; i >= 0; i-- {
		st.closers[i]()
	}
	st.closers = nil
}

func serve(st *Stack, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	st.closers = append(st.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// schedule invokes the refresher with an empty event every interval until ctx ends.
func schedule(ctx context.Context, every time.Duration, f *Function, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			out, err := f.Invoke(ctx, []byte("{}"))
			if err != nil {
				log.Warn("scheduled refresh failed", "error", err.Error())
				continue
			}
			log.Info("scheduled refresh", "summary", string(out))
		}
	}
}

// ModuleRoot returns the nearest folder holding go.mod, from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("localstack: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("localstack: no go.mod in the working directory or above; run from the repository")
		}
		dir = parent
	}
}
