// Package lambdarun builds Lambda function binaries and runs them under the AWS Lambda Runtime
// Interface Emulator (RIE), the same emulator AWS ships in its base images. It is how the local
// stack and the end-to-end tests run the real `bootstrap` binaries without Docker.
//
// The emulator serves one invocation at a time and crashes on a concurrent second one
// (see shared/reference/local-aws.md), so a Function serialises its invocations.
package lambdarun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RIEModule is the Go tool dependency (go.mod `tool` line) that provides the emulator.
const RIEModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// EnvRIE names an environment variable that, when set, is the emulator binary to use instead of
// building the tool dependency.
const EnvRIE = "AWS_LAMBDA_RIE"

// RIEPath returns the emulator binary: $AWS_LAMBDA_RIE when set, else the tool dependency built
// by `go tool -n` (cached by the go command after the first build). dir is the module root.
func RIEPath(ctx context.Context, dir string) (string, error) {
	if p := os.Getenv(EnvRIE); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("lambdarun: %s=%s: %w", EnvRIE, p, err)
		}
		return p, nil
	}
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", "aws-lambda-rie")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("lambdarun: build the emulator (%s): %w: %s", RIEModule, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Build compiles the function package pkg (e.g. "./functions/callback") for this machine as
// outDir/bootstrap, with the flags used for AWS (`-tags lambda.norpc -trimpath`), and returns
// the binary's path. dir is the module root.
func Build(ctx context.Context, dir, pkg, outDir string) (string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("lambdarun: build %s: %w", pkg, err)
	}
	out := filepath.Join(outDir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("lambdarun: build %s: %w: %s", pkg, err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

// Options configure one emulated function.
type Options struct {
	// RIE is the emulator binary (see RIEPath).
	RIE string
	// Bootstrap is the function binary (see Build).
	Bootstrap string
	// Name is AWS_LAMBDA_FUNCTION_NAME; defaults to the bootstrap's folder name.
	Name string
	// Env is added to the function's environment (KEY=value), after a minimal base
	// (PATH, HOME) so the host's AWS settings do not leak in by accident.
	Env []string
	// Timeout is the function timeout the emulator enforces; default 15 s.
	Timeout time.Duration
	// Output receives the emulator's and the function's stdout and stderr (the function's logs).
	// Nil discards them. Invoke returns only once the emulator's REPORT line for the
	// invocation reached Output (see reportWait), so the invocation's logs are there too.
	Output io.Writer
	// StartTimeout bounds the wait for the emulator to listen; default 10 s.
	StartTimeout time.Duration
}

// Function is a running emulator hosting one function. Safe for concurrent use: invocations are
// serialised.
type Function struct {
	name   string
	url    string
	cmd    *exec.Cmd
	done   chan struct{}
	waited error
	mu     sync.Mutex // one invocation at a time: the emulator crashes on concurrent invokes
	client *http.Client
	log    *logWatch
}

// reportWait bounds Invoke's wait for the emulator's REPORT line after the answer arrived. The
// line normally follows within milliseconds; on a loaded machine the pipe that carries the
// logs can lag the HTTP answer by far more.
const reportWait = 10 * time.Second

// reportPrefix starts the line the emulator writes after each invocation, once the function
// has answered. The function's own log lines for that invocation come before it, through the
// same pipe.
var reportPrefix = []byte("REPORT RequestId: ")

// logWatch passes the emulator's output on to w and counts its REPORT lines, so that Invoke
// can wait until an invocation's logs have all been delivered (the answer reaches the caller
// over HTTP, the logs over a pipe, and under load the pipe is slower).
type logWatch struct {
	w       io.Writer
	mu      sync.Mutex
	line    []byte // the start of the current line, at most len(reportPrefix) bytes
	reports int
	changed chan struct{} // closed (and replaced) when reports grows
}

func newLogWatch(w io.Writer) *logWatch { return &logWatch{w: w, changed: make(chan struct{})} }

func (l *logWatch) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range p {
		switch {
		case b == '\n':
			if bytes.Equal(l.line, reportPrefix) {
				l.reports++
				close(l.changed)
				l.changed = make(chan struct{})
			}
			l.line = l.line[:0]
		case len(l.line) < len(reportPrefix):
			l.line = append(l.line, b)
		}
	}
	return n, err
}

// state returns the REPORT lines seen so far and a channel closed when there are more.
func (l *logWatch) state() (int, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reports, l.changed
}

// waitReport waits until more than before REPORT lines were written, the emulator exits,
// ctx ends or reportWait passes, whichever comes first.
func (f *Function) waitReport(ctx context.Context, before int) {
	timeout := time.NewTimer(reportWait)
	defer timeout.Stop()
	for {
		n, changed := f.log.state()
		if n > before {
			return
		}
		select {
		case <-changed:
		case <-f.done:
			return
		case <-ctx.Done():
			return
		case <-timeout.C:
			return
		}
	}
}

// FunctionError is a handler error reported by the runtime (`{"errorMessage","errorType"}`),
// or a crash or timeout of the function.
type FunctionError struct {
	Function string
	Type     string
	Message  string
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("lambdarun: %s: %s: %s", e.Function, e.Type, e.Message)
}

// Start launches the emulator for one function on two free loopback ports and waits until it
// accepts connections. Close stops it.
func Start(ctx context.Context, o Options) (*Function, error) {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.Name == "" {
		o.Name = filepath.Base(filepath.Dir(o.Bootstrap))
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	runtimePort, err := freePort()
	if err != nil {
		return nil, err
	}
	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort))
	cmd := exec.Command(o.RIE,
		"--runtime-interface-emulator-address", apiAddr,
		"--runtime-api-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(runtimePort)),
		o.Bootstrap)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"AWS_LAMBDA_FUNCTION_NAME=" + o.Name,
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(int(o.Timeout.Seconds())),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
	}, o.Env...)
	log := newLogWatch(o.Output)
	cmd.Stdout = log // the same writer: one pipe, so the function's lines precede the REPORT
	cmd.Stderr = log
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lambdarun: start emulator for %s: %w", o.Name, err)
	}
	f := &Function{
		name:   o.Name,
		url:    "http://" + apiAddr + "/2015-03-31/functions/function/invocations",
		cmd:    cmd,
		done:   make(chan struct{}),
		client: &http.Client{Timeout: o.Timeout + 10*time.Second},
		log:    log,
	}
	go func() { f.waited = cmd.Wait(); close(f.done) }()

	deadline := time.Now().Add(o.StartTimeout)
	for {
		c, err := net.DialTimeout("tcp", apiAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return f, nil
		}
		select {
		case <-f.done:
			return nil, fmt.Errorf("lambdarun: emulator for %s exited at start: %v", o.Name, f.waited)
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lambdarun: start %s: %w", o.Name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lambdarun: emulator for %s not listening on %s after %s", o.Name, apiAddr, o.StartTimeout)
		}
	}
}

// Invoke runs the function once with payload (a JSON event) and returns its JSON result. A
// handler error, a crash or a timeout is returned as *FunctionError.
func (f *Function) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("lambdarun: invoke %s: %w", f.name, err)
	}
	reports, _ := f.log.state()
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lambdarun: invoke %s: %w", f.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 6<<20)) // Lambda's synchronous payload limit
	if err != nil {
		return nil, fmt.Errorf("lambdarun: invoke %s: read: %w", f.name, err)
	}
	if resp.StatusCode == http.StatusOK {
		// The function answered: its logs are on their way through the output pipe, which
		// the caller reads next.
		f.waitReport(ctx, reports)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &FunctionError{Function: f.name, Type: "Runtime.ExitError", Message: fmt.Sprintf("emulator answered %d: %.200s", resp.StatusCode, body)}
	}
	if bytes.HasPrefix(body, []byte("Task timed out")) {
		return nil, &FunctionError{Function: f.name, Type: "Sandbox.Timedout", Message: string(body)}
	}
	var fe struct {
		Message *string `json:"errorMessage"`
		Type    string  `json:"errorType"`
	}
	if json.Unmarshal(body, &fe) == nil && fe.Message != nil {
		return nil, &FunctionError{Function: f.name, Type: fe.Type, Message: *fe.Message}
	}
	return body, nil
}

// InvokeJSON marshals event, invokes the function and unmarshals its result into out (if not nil).
func (f *Function) InvokeJSON(ctx context.Context, event, out any) error {
	payload, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("lambdarun: invoke %s: marshal event: %w", f.name, err)
	}
	body, err := f.Invoke(ctx, payload)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("lambdarun: invoke %s: decode result: %w", f.name, err)
	}
	return nil
}

// Close stops the emulator and its function.
func (f *Function) Close() error {
	select {
	case <-f.done:
		return nil
	default:
	}
	_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
		<-f.done
	}
	return nil
}

// Kill ends the emulator and its function at once (SIGKILL to the process group), as an
// out-of-memory kill or a crashed host ends a Lambda instance mid-call: nothing runs after it.
// An invocation in flight fails.
func (f *Function) Kill() {
	select {
	case <-f.done:
		return
	default:
	}
	// The function first (the emulator would not get to stop it), then the emulator's group.
	for _, pid := range descendants(f.cmd.Process.Pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
	<-f.done
}

// ErrNoPort is returned when no loopback port can be reserved.
var ErrNoPort = errors.New("lambdarun: no free loopback port")

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoPort, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Report is what the emulator's REPORT line says of one invocation.
type Report struct {
	Duration      time.Duration // "Duration: X ms"
	MaxMemoryUsed int           // "Max Memory Used: Y MB"
}

// Reports parses the emulator's REPORT lines in out (the Output of a Function), in order.
// A REPORT line without a Duration is an error: the emulator's format changed.
func Reports(out string) ([]Report, error) {
	var rs []Report
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, string(reportPrefix)) {
			continue
		}
		var r Report
		var seen bool
		for field := range strings.SplitSeq(strings.TrimSpace(line), "\t") {
			k, v, ok := strings.Cut(field, ": ")
			if !ok {
				continue
			}
			switch k {
			case "Duration":
				ms, err := strconv.ParseFloat(strings.TrimSuffix(v, " ms"), 64)
				if err != nil {
					return nil, fmt.Errorf("REPORT line %q: %w", line, err)
				}
				r.Duration, seen = time.Duration(ms*float64(time.Millisecond)), true
			case "Max Memory Used":
				mb, err := strconv.Atoi(strings.TrimSuffix(v, " MB"))
				if err != nil {
					return nil, fmt.Errorf("REPORT line %q: %w", line, err)
				}
				r.MaxMemoryUsed = mb
			}
		}
		if !seen {
			return nil, fmt.Errorf("REPORT line %q has no Duration", line)
		}
		rs = append(rs, r)
	}
	return rs, nil
}
