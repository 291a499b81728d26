// Command pdlocal runs the backend locally on its embedded defaults: moto_server for AWS,
// the Pipedrive simulator, and the three functions' real bootstraps under the Lambda Runtime
// Interface Emulator (the callback behind a local HTTP API, the worker fed by the jobs queue,
// the refresher invoked as its schedule would). It walks one installation through install,
// webhook registration, reload, refreshes, API calls and uninstall, and exits 0 when every
// step answered as expected.
//
//	go run ./cmd/pdlocal          # run the install flow and exit
//	go run ./cmd/pdlocal -serve   # then keep the stack up for a browser and curl, the refresher on
//	                              # template.yaml's schedule (-refresh-every to change it)
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/localstack"
)

func main() {
	serve := flag.Bool("serve", false, "keep the stack running after the install flow, until interrupted")
	gateway := flag.String("gateway", "127.0.0.1:8080", "address of the local HTTP API (the callback URL's host)")
	sim := flag.String("sim", "127.0.0.1:8787", "address of the Pipedrive simulator")
	rotate := flag.Bool("rotate", false, "simulate refresh-token rotation")
	verbose := flag.Bool("v", false, "print the functions' and the stack's JSON logs")
	every := flag.Duration("refresh-every", 0, "with -serve, run the refresher at this interval instead of template.yaml's RefreshSchedule")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := localstack.Config{GatewayAddr: *gateway, SimulatorAddr: *sim, RotateRefreshTokens: *rotate}
	if *serve {
		cfg.Schedules, cfg.RefreshEvery = true, *every
	}
	if *verbose {
		cfg.FunctionOutput = os.Stderr
		cfg.Log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	start := time.Now()
	st, err := localstack.Start(ctx, cfg)
	if err != nil {
		log.Fatalf("pdlocal: %v", err)
	}
	defer st.Close()
	fmt.Printf("stack up in %s: gateway %s, simulator %s, moto %s\n", time.Since(start).Round(time.Millisecond), st.GatewayURL, st.SimulatorURL, st.MotoURL)

	if err := st.Demo(ctx, os.Stdout); err != nil {
		st.Close()
		log.Fatalf("pdlocal: install flow failed: %v", err)
	}
	if !*serve {
		return
	}
	fmt.Printf("\nserving until Ctrl-C:\n  install:   %s/oauth/install\n  simulator: %s (admin API under /_sim/, see docs/simulator.md)\n", st.GatewayURL, st.SimulatorURL)
	fmt.Printf("  pdctl:     AWS_ENDPOINT_URL=%s AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \\\n"+
		"             TOKENS_TABLE=%s JOBS_QUEUE_URL=%s JOBS_DLQ_URL=%s CLIENT_SECRET_ID=%s PIPEDRIVE_OAUTH_URL=%s \\\n"+
		"             go run ./cmd/pdctl list\n",
		st.MotoURL, st.Resources.TableName, st.Resources.JobsQueueURL, st.Resources.DeadLetterQueueURL, st.Resources.SecretID, st.SimulatorURL)
	<-ctx.Done()
}
