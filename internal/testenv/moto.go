// Package testenv gives tests real AWS APIs: one moto_server per test binary on a free
// loopback port, SDK configuration pointed at it, the project's resources provisioned from
// template.yaml under names unique to each test, and readers for queues and alerts. It also
// runs function packages under the Lambda emulator (StartFunction) and checks a whole run's
// log for secrets (Secrets, MainCheckingLogs).
//
// Use it from TestMain so that moto is stopped when the tests end:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// moto is started on first use, by motoserver. If it cannot start, the test fails (never
// skips) with the way to install it: pip install "moto[server]" cfn-lint.
package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/motoserver"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
)

var (
	motoOnce   sync.Once
	moto       *motoserver.Server
	motoErr    error
	motoLogged sync.Once
)

// server returns the running moto, starting it on first use; it fails t if moto cannot start.
func server(t testing.TB) *motoserver.Server {
	t.Helper()
	motoOnce.Do(func() { moto, motoErr = motoserver.Start(context.Background(), motoserver.Options{}) })
	if motoErr != nil {
		t.Fatalf("testenv: %v", motoErr)
	}
	motoLogged.Do(func() {
		t.Logf("testenv: moto_server ready at %s in %v (log %s)", moto.URL, moto.Startup.Round(time.Millisecond), moto.LogFile)
	})
	return moto
}

// Endpoint returns the base URL of this test binary's moto_server, starting it if needed.
func Endpoint(t testing.TB) string {
	t.Helper()
	return server(t).URL
}

// Main runs the tests and then stops moto if they started it. Call it from TestMain:
// os.Exit(testenv.Main(m)). When a test failed, moto's log is kept and its path printed.
// It sets pdoauth.EnvAllowLoopback for the test binary: the simulator's api_domain is its
// loopback URL, which the deployed functions refuse.
func Main(m *testing.M) int {
	os.Setenv(pdoauth.EnvAllowLoopback, "true")
	code := m.Run()
	stopMoto(code != 0)
	return code
}

func stopMoto(keepLog bool) {
	if moto == nil {
		return
	}
	if err := moto.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
	}
	if keepLog {
		fmt.Fprintf(os.Stderr, "testenv: moto_server log kept at %s\n", moto.LogFile)
		return
	}
	_ = os.Remove(moto.LogFile)
}
