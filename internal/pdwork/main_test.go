package pdwork_test

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// The whole run's log (the worker engines', Limits', the refresher's and the client
// credentials' loggers write to it) and every token the tests met: TestMain fails the run if
// the log holds one (as is, escaped, base64 or a 12+ character piece).
var (
	runLog  testenv.Buffer
	secrets testenv.Secrets
)

func TestMain(m *testing.M) { os.Exit(testenv.MainCheckingLogs(m, &runLog, &secrets)) }

// runLogger is a JSON logger over the run log (and stderr when LIMITS_DEBUG is set).
func runLogger() *slog.Logger {
	var w io.Writer = &runLog
	if os.Getenv("LIMITS_DEBUG") != "" {
		w = io.MultiWriter(&runLog, os.Stderr)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// oauthHTTP is the simulator's client for the OAuth client under test: every token it sends
// or receives is registered as a secret.
func oauthHTTP(sim *pdsimtest.TestServer) *http.Client {
	return testenv.RecordingClient(&secrets, sim.HTTP.Client())
}

// TestRunLogLeakCheckIsLive: a token that reaches the run log fails the run. Both runs refresh
// through a session after a 401 (the refresher and Limits log to the run log); the leaking one
// also logs the new access token through the same logger, as a careless debug line would.
func TestRunLogLeakCheckIsLive(t *testing.T) {
	testenv.LeakCheckIsLive(t, "access token", func(t *testing.T, leak bool) {
		s, sim := sessions(t)
		sim.ExpireAccessTokens(pdsim.DefaultUserID)
		ss, err := s.Open(t.Context(), acmeJob("leak-canary"))
		if err != nil {
			t.Fatalf("Open = %v", err)
		}
		if resp, err := ss.Do(t.Context(), "GET", "/api/v2/deals", nil); err != nil || resp.Status != 200 {
			t.Fatalf("Do = %d, %v; want 200 after a refresh", resp.Status, err)
		}
		if leak {
			runLogger().Info("session refreshed", "token", ss.Installation().AccessToken[:16])
		}
	})
}
