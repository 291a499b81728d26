// Command pdsim runs the Pipedrive simulator (internal/pdsim) as a standalone HTTP server, with
// its admin API under /_sim/ enabled. Flags and PDSIM_* environment variables configure it;
// `pdsim -h` lists them. It logs JSON to stdout (never tokens or secrets), starting with a
// "listening" event that carries base_url, and shuts down gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pdsim:", err)
		stop()
		os.Exit(1)
	}
}
