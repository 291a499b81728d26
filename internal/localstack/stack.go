// Package localstack runs the whole backend on one machine without Docker or an AWS account:
// moto_server for DynamoDB, Secrets Manager, SQS and SNS (resources created from
// template.yaml), the Pipedrive simulator, and the real callback `bootstrap` under the AWS
// Lambda Runtime Interface Emulator (the callback behind a local HTTP API gateway, the
// refresher invoked directly).
package localstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/apigw"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/motoserver"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/sqspoller"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// Config configures a local stack. The zero value (plus Root) runs on free loopback ports.
type Config struct {
	// Root is the module root (where go.mod is); the functions are built from it. Empty means
	// the nearest folder holding go.mod, from the working directory up.
	Root string
	// WorkDir holds built binaries and moto's log; default Root/.local.
	WorkDir string
	// GatewayAddr is where the HTTP API listens (default 127.0.0.1:0, a free port).
	GatewayAddr string
	// SimulatorAddr is where the Pipedrive simulator listens (default 127.0.0.1:0).
	SimulatorAddr string
	// RotateRefreshTokens sets the simulator's refresh-token rotation.
	RotateRefreshTokens bool
	// RefreshEvery invokes the refresher with `{}` at this interval, as the EventBridge
	// schedule does; zero leaves it to explicit invocations.
	RefreshEvery time.Duration
	// FunctionOutput receives the functions' logs (JSON lines); nil discards.
	FunctionOutput io.Writer
	// Log receives the stack's own events; nil discards.
	Log *slog.Logger
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
	// Refresher is the refresher function under the emulator; invoke it as EventBridge would
	// (`{}`) or as an operator would (`{"company_id":…,"user_id":…,"force":true}`).
	Refresher *lambdarun.Function
	// Worker is the apicall function under the emulator. The jobs queue feeds it through an
	// SQS poller; it can also be invoked directly with one job.
	Worker *lambdarun.Function

	closers []func()
}

// Local defaults for the simulated Pipedrive user who installs the app.
const (
	DemoUserID    int64 = 5206648
	DemoCompanyID int64 = 3408256
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
		cfg.WorkDir = filepath.Join(cfg.Root, ".local")
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

	// Build first: the slowest step, and the one most likely to fail on a broken tree.
	rie, err := lambdarun.RIEPath(ctx, cfg.Root)
	if err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, fn := range []string{"callback", "refresher", "apicall"} {
		bin, err := lambdarun.Build(ctx, cfg.Root, "./functions/"+fn, filepath.Join(cfg.WorkDir, "bin", fn))
		if err != nil {
			return nil, err
		}
		bins[fn] = bin
	}
	cfg.Log.Info("built functions", "rie", rie, "functions", len(bins))

	moto, err := motoserver.Start(ctx, motoserver.Options{LogFile: filepath.Join(cfg.WorkDir, "moto.log")})
	if err != nil {
		return nil, fmt.Errorf("localstack: %w", err)
	}
	st.closers = append(st.closers, func() { moto.Close() })
	st.MotoURL = moto.URL
	st.AWS = moto.AWSConfig()
	cfg.Log.Info("moto started", "url", moto.URL)

	st.Credentials = infra.ClientCredentials{
		ClientID:     "local-client-id",
		ClientSecret: "local-secret-" + randomHex(16),
		StateKey:     randomHex(32),
	}
	st.Resources, err = infra.Provision(ctx, st.AWS, infra.NamesWithPrefix("pdkit-local-"), st.Credentials)
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

	simListener, err := net.Listen("tcp", cfg.SimulatorAddr)
	if err != nil {
		return nil, fmt.Errorf("localstack: simulator listen: %w", err)
	}
	st.closers = append(st.closers, func() { simListener.Close() })
	st.SimulatorURL = "http://" + simListener.Addr().String()
	st.Simulator = pdsim.New(pdsim.Config{
		ClientID:            st.Credentials.ClientID,
		ClientSecret:        st.Credentials.ClientSecret,
		RedirectURI:         redirectURI,
		UserID:              DemoUserID,
		CompanyID:           DemoCompanyID,
		CompanyDomain:       "acme",
		CompanyName:         "Acme Ltd",
		Name:                "Dana Demo",
		Email:               "dana@acme.example",
		RotateRefreshTokens: cfg.RotateRefreshTokens,
		BaseURL:             st.SimulatorURL,
		AdminEnabled:        true,
		Logger:              cfg.Log.With("component", "pdsim"),
	})
	serve(st, simListener, st.Simulator)

	// Each function gets the environment template.yaml gives it, plus what really differs
	// locally: Pipedrive is the simulator, the callback URL is the local gateway's.
	local := map[string]string{
		"PIPEDRIVE_OAUTH_URL": st.SimulatorURL,
		"REDIRECT_URI":        redirectURI,
		"WEBHOOK_URL":         st.GatewayURL + "/pipedrive/webhooks",
	}
	envFor := func(logicalID string) ([]string, error) {
		fe := st.Resources.FunctionEnv(logicalID)
		if fe == nil {
			return nil, fmt.Errorf("localstack: template.yaml defines no %s", logicalID)
		}
		maps.Copy(fe, local)
		return append(moto.Env(), envList(fe)...), nil
	}
	start := func(logicalID, bin string, timeout time.Duration) (*lambdarun.Function, error) {
		env, err := envFor(logicalID)
		if err != nil {
			return nil, err
		}
		f, err := lambdarun.Start(ctx, lambdarun.Options{
			RIE: rie, Bootstrap: bin, Name: logicalID, Env: env, Timeout: timeout, Output: cfg.FunctionOutput,
		})
		if err != nil {
			return nil, err
		}
		st.closers = append(st.closers, func() { f.Close() })
		return f, nil
	}
	callback, err := start("CallbackFunction", bins["callback"], 15*time.Second)
	if err != nil {
		return nil, err
	}
	if st.Refresher, err = start("RefresherFunction", bins["refresher"], 120*time.Second); err != nil {
		return nil, err
	}
	if st.Worker, err = start("ApiCallFunction", bins["apicall"], 30*time.Second); err != nil {
		return nil, err
	}

	// The event sources: the jobs queue feeds the worker as Lambda's SQS mapping would, and
	// (when asked) a ticker plays the EventBridge schedule of the refresher.
	bg, stopBG := context.WithCancel(context.Background())
	done := make(chan struct{})
	poller := &sqspoller.Poller{
		SQS: sqs.NewFromConfig(st.AWS), QueueURL: st.Resources.JobsQueueURL, QueueARN: st.Resources.JobsQueueARN,
		Region: motoserver.Region, Function: st.Worker, BatchSize: 10, Log: cfg.Log.With("component", "sqs"),
	}
	go func() {
		defer close(done)
		if cfg.RefreshEvery > 0 {
			go schedule(bg, cfg.RefreshEvery, st.Refresher, cfg.Log)
		}
		poller.Run(bg)
	}()
	st.closers = append(st.closers, func() { stopBG(); <-done })

	serve(st, gwListener, &apigw.Gateway{
		Function: callback,
		Routes: []apigw.Route{
			{Method: http.MethodGet, Path: "/oauth/install"},
			{Method: http.MethodGet, Path: "/oauth/callback"},
			{Method: http.MethodDelete, Path: "/oauth/callback"},
		},
		Log: cfg.Log.With("component", "gateway"),
	})

	st.Store = &tokenstore.Store{DB: dynamodb.NewFromConfig(st.AWS), Table: st.Resources.TableName}
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
func schedule(ctx context.Context, every time.Duration, f *lambdarun.Function, log *slog.Logger) {
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
