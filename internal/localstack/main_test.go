package localstack_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/localstack"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// The whole run's log: the functions' output, the stack's own events (gateway, pollers,
// schedules, simulator) and Demo's lines. TestMain fails the run if it holds a secret the
// tests registered (as is, escaped, base64 or a 12+ character piece): the stack's client
// secret and state key, and every token, code and state the simulator handed out.
var (
	runLog  testenv.Buffer
	secrets testenv.Secrets
)

func TestMain(m *testing.M) { os.Exit(testenv.MainCheckingLogs(m, &runLog, &secrets)) }

// stackConfig is a test's stack configuration: function output into logs (the test's own
// record) and the run log, the stack's events into the run log, and the simulator's tokens,
// codes and states registered as secrets.
func stackConfig(t *testing.T, logs io.Writer) localstack.Config {
	t.Helper()
	return localstack.Config{
		Root: testenv.ModuleRoot(t), AppDir: filepath.Join(testenv.ModuleRoot(t), localstack.ExampleAppDir), WorkDir: t.TempDir(),
		FunctionOutput: io.MultiWriter(logs, &runLog),
		Log:            slog.New(slog.NewJSONHandler(&runLog, &slog.HandlerOptions{Level: slog.LevelDebug})),
		WrapSimulator:  func(h http.Handler) http.Handler { return testenv.RecordSecrets(&secrets, h) },
	}
}

// started registers a running stack's credentials as secrets.
func started(st *localstack.Stack) {
	secrets.Add("client secret", st.Credentials.ClientSecret)
	secrets.Add("state key", st.Credentials.StateKey)
}

// TestRunLogLeakCheckIsLive: a secret that reaches the run log through a stack's outputs fails
// the run. Both runs write a function log line and a stack event through stackConfig's
// outputs; the leaking one puts a registered client secret in the function's line, as a
// function logging its configuration would.
func TestRunLogLeakCheckIsLive(t *testing.T) {
	testenv.LeakCheckIsLive(t, "client secret", func(t *testing.T, leak bool) {
		cfg := stackConfig(t, io.Discard)
		const secret = "local-secret-canary-0123456789abcdef"
		secrets.Add("client secret", secret)
		cfg.Log.Info("stack ready", "gateway", "http://127.0.0.1:1")
		line := `{"level":"INFO","msg":"credentials loaded","client_id":"local-client-id"}`
		if leak {
			line = fmt.Sprintf(`{"level":"INFO","msg":"credentials loaded","client_id":"local-client-id","secret_prefix":%q}`, secret[:20])
		}
		fmt.Fprintln(cfg.FunctionOutput, line)
	})
}
