// Command refreshbench runs the refresh benchmark (make bench-refresh): moto and the Pipedrive
// simulator with token-endpoint latency L, and prints one line per scenario (see
// internal/refreshbench), in a form compared across commits:
//
//	refresh-bench N=1000 L=200ms C=8 wall=… floor=… ratio=… token_calls_per_due=… ddb_per_refresh=…
//	refresh-bench N=10000 L=200ms C=8 fanout=8 wall=… … (fan-out over the due shards; C per run)
//	refresh-bench N=1000 L=200ms C=8 racers=4 wall=… …  (four scheduled runs at once)
//	refresh-idle days=30 installs=1000 active=100 token_calls_per_idle_day=… token_calls_per_active_day=… expired_on_use=… runs_per_day=… jobs_per_day=… token_calls_per_day=… ops_per_day=…
//	refresh-idle days=30 installs=1000 active=100 … checks_per_day=… (with the daily webhook health check)
//	refresh-idle days=30 installs=100000 active=0 … (the idle fleet docs/capacity.md is computed from)
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime/pprof"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/motoserver"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refreshbench"
)

func main() {
	latency := flag.Duration("latency", 200*time.Millisecond, "token endpoint latency L")
	concurrency := flag.Int("c", 8, "token calls in flight per run C")
	only := flag.String("only", "", `run one scenario: "1000", "10000", "race", "idle", "check" or "fleet"`)
	fleet := flag.Int("fleet", 100_000, `installations of the "fleet" scenario, all idle (the active ones cost per installation what the "idle" scenario's active ones measure)`)
	motoURL := flag.String("moto", "", "use the moto_server at this URL instead of starting one (e.g. one run under a profiler)")
	cpuProfile := flag.String("cpuprofile", "", "write this process's CPU profile (bench, SDK and simulator; not moto) to the file")
	flag.Parse()
	log.SetFlags(0)

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	needMoto := *only != "idle" && *only != "fleet" && *only != "check"
	var env refreshbench.AWS
	if needMoto && *motoURL != "" {
		env.Config = motoserver.AWSConfig(*motoURL)
	} else if needMoto {
		moto, err := motoserver.Start(ctx, motoserver.Options{})
		if err != nil {
			log.Fatal(err)
		}
		defer moto.Close()
		env.Config = moto.AWSConfig()
	}
	run := func(name string, sc refreshbench.Throughput, serial bool) {
		if *only != "" && *only != name {
			return
		}
		e := env
		e.Serial = serial
		r, err := refreshbench.RunThroughput(ctx, e, sc)
		if err != nil {
			log.Fatalf("refresh-bench %s: %v", name, err)
		}
		fmt.Println(r.Line())
	}
	run("1000", refreshbench.Throughput{N: 1000, L: *latency, C: *concurrency}, false)
	run("10000", refreshbench.Throughput{N: 10000, L: *latency, C: *concurrency, FanOut: true}, false)
	run("race", refreshbench.Throughput{N: 1000, L: *latency, C: *concurrency, Racers: 4}, true)
	idle := func(name string, sc refreshbench.Idle) {
		if *only != "" && *only != name {
			return
		}
		r, err := refreshbench.RunIdle(ctx, sc)
		if err != nil {
			log.Fatalf("refresh-idle: %v", err)
		}
		fmt.Println(r.Line())
		if r.NeedsReauth > 0 {
			fmt.Fprintf(os.Stderr, "refresh-idle: %d installations lost their grant\n", r.NeedsReauth)
			os.Exit(1)
		}
	}
	idle("idle", refreshbench.Idle{Days: 30, Installs: 1000, Active: 100})
	idle("check", refreshbench.Idle{Days: 30, Installs: 1000, Active: 100, CheckEvery: 24 * time.Hour})
	idle("fleet", refreshbench.Idle{Days: 30, Installs: *fleet})
}
