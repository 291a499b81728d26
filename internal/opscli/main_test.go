package opscli_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// The whole run's output: everything pdctl's code prints (CLI.Out), logs (the audit lines,
// the refresher's decisions) and returns as an error (pdctl prints it on stderr). TestMain
// fails the run if it holds a secret the tests registered (as is, escaped, base64 or a 12+
// character piece). Only decrypt's tokens stay out of it: CLI.TokensOut, which the tests
// point elsewhere, as an operator's terminal is.
var (
	runLog  testenv.Buffer
	secrets testenv.Secrets
)

func TestMain(m *testing.M) { os.Exit(testenv.MainCheckingLogs(m, &runLog, &secrets)) }

// runLogger is a JSON logger over the run log and also w (a test's own record), as pdctl
// logs to stderr.
func runLogger(w io.Writer) *slog.Logger {
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewJSONHandler(io.MultiWriter(&runLog, w), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runCLI runs cli as pdctl does, writing an error to the run log as pdctl writes it to stderr.
func runCLI(ctx context.Context, cli *opscli.CLI, args []string) error {
	err := cli.Run(ctx, args)
	if err != nil {
		fmt.Fprintln(&runLog, "pdctl:", err)
	}
	return err
}

// TestRunLogLeakCheckIsLive: a token that reaches pdctl's checked output fails the run. The
// leaking run prints a decrypted token to Out (TokensOut unset, as pdctl leaves it); the clean
// run is the same decrypt with TokensOut apart.
func TestRunLogLeakCheckIsLive(t *testing.T) {
	testenv.LeakCheckIsLive(t, "access token", func(t *testing.T, leak bool) {
		f := newFixture(t)
		id := f.install(t, 21, 22, 0)
		f.cli.Tokens = f.store
		f.cli.Audit = &opscli.Auditor{Log: runLogger(nil)}
		if leak {
			f.cli.TokensOut = nil
		}
		if err := f.exec(t.Context(), "decrypt", id.String(), "-reason", "prove the leak check is live", "--no-audit"); err != nil {
			t.Fatalf("decrypt = %v", err)
		}
	})
}
