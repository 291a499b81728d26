package lambdarun_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// startEcho runs testdata/echo under the emulator with the given function timeout.
func startEcho(t *testing.T, timeout time.Duration) (*lambdarun.Function, *testenv.Buffer) {
	t.Helper()
	return testenv.StartFunction(t, "./internal/lambdarun/testdata/echo", lambdarun.Options{
		Name: "echo", Timeout: timeout, Env: []string{"ECHO_ENV=passed"},
	})
}

func TestInvokeUnderEmulator(t *testing.T) {
	f, out := startEcho(t, 1*time.Second)
	ctx := context.Background()

	var got struct{ Said, Env string }
	if err := f.InvokeJSON(ctx, map[string]any{"say": "hello"}, &got); err != nil {
		t.Fatalf("Invoke(say hello) error = %v", err)
	}
	if got.Said != "hello" || got.Env != "passed" {
		t.Errorf("Invoke(say hello) = %+v, want said=hello env=passed", got)
	}
	// The emulator relays the function's stdout through a pipe that can lag the answer;
	// Invoke returns only once the invocation's REPORT line, which follows its logs, arrived.
	if !strings.Contains(out.String(), `"say":"hello"`) {
		t.Errorf("function log not captured when Invoke returned; output:\n%s", out.String())
	}

	// A handler error comes back as a FunctionError carrying the Go type name.
	err := f.InvokeJSON(ctx, map[string]any{"fail": "boom"}, nil)
	var fe *lambdarun.FunctionError
	if !errors.As(err, &fe) || fe.Message != "boom" || fe.Type != "errorString" {
		t.Errorf("Invoke(fail) error = %#v, want FunctionError{errorString, boom}", err)
	}

	// A timeout is reported, and the emulator restarts the runtime for the next call.
	err = f.InvokeJSON(ctx, map[string]any{"sleep_ms": 2500}, nil)
	if !errors.As(err, &fe) || fe.Type != "Sandbox.Timedout" {
		t.Errorf("Invoke(sleep past timeout) error = %v, want Sandbox.Timedout", err)
	}
	if err := f.InvokeJSON(ctx, map[string]any{"say": "again"}, &got); err != nil || got.Said != "again" {
		t.Errorf("Invoke after timeout = %+v, %v; want said=again", got, err)
	}
	if !strings.Contains(out.String(), `"say":"again"`) {
		t.Errorf("function log after the timeout not captured when Invoke returned; output:\n%s", out.String())
	}

	// A panic is an error, never a success.
	if err := f.InvokeJSON(ctx, map[string]any{"panic": true}, nil); !errors.As(err, &fe) {
		t.Errorf("Invoke(panic) error = %v, want FunctionError", err)
	}
}

func TestConcurrentInvokesAreSerialised(t *testing.T) {
	f, _ := startEcho(t, 5*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got struct{ Said string }
			want := fmt.Sprint("call-", i)
			if err := f.InvokeJSON(context.Background(), map[string]any{"say": want, "sleep_ms": 20}, &got); err != nil {
				errs <- err
				return
			}
			if got.Said != want {
				errs <- fmt.Errorf("Invoke(%s) = %s", want, got.Said)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRIEPathFromEnv(t *testing.T) {
	t.Setenv(lambdarun.EnvRIE, filepath.Join(t.TempDir(), "missing"))
	if _, err := lambdarun.RIEPath(context.Background(), "."); err == nil {
		t.Errorf("RIEPath with a missing %s = nil error, want one", lambdarun.EnvRIE)
	}
	exe, _ := os.Executable()
	t.Setenv(lambdarun.EnvRIE, exe)
	if got, err := lambdarun.RIEPath(context.Background(), "."); err != nil || got != exe {
		t.Errorf("RIEPath = %q, %v; want %q", got, err, exe)
	}
}

func TestBuildFailureIsReported(t *testing.T) {
	_, err := lambdarun.Build(context.Background(), testenv.ModuleRoot(t), "./does/not/exist", t.TempDir())
	if err == nil {
		t.Fatal("Build(missing package) = nil error, want one")
	}
}
