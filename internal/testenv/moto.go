// Package testenv gives tests real AWS APIs: one moto_server per test binary on a free
// loopback port, SDK configuration pointed at it, the project's resources provisioned from
// template.yaml under names unique to each test, and readers for queues and alerts.
//
// Use it from TestMain so that moto is stopped when the tests end:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// moto is started on first use. If it cannot start, the test fails (never skips) with the
// way to install it: pip install "moto[server]" cfn-lint.
package testenv

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

const (
	// readyTimeout bounds moto's start; it is ready in about half a second when idle.
	readyTimeout = 20 * time.Second
	// logTailBytes is how much of moto's log a failure message quotes.
	logTailBytes = 4 << 10
	installHint  = `install moto with: pip install "moto[server]" cfn-lint (testenv runs moto_server, ` +
		`or python3 -m moto.server, from PATH or ~/.pyenv/shims)`
)

// errExited means moto exited before answering, typically because its port was taken.
var errExited = errors.New("moto_server exited before it was ready")

// motoServer is the running moto of this test binary.
type motoServer struct {
	endpoint string
	pid      int
	exited   chan struct{} // closed when the process has exited
	logPath  string
	startup  time.Duration
}

var (
	motoOnce   sync.Once
	moto       *motoServer
	motoErr    error
	motoLogged sync.Once
)

// server returns the running moto, starting it on first use; it fails t if moto cannot start.
func server(t testing.TB) *motoServer {
	t.Helper()
	motoOnce.Do(func() { moto, motoErr = startMoto() })
	if motoErr != nil {
		t.Fatalf("testenv: %v", motoErr)
	}
	motoLogged.Do(func() {
		t.Logf("testenv: moto_server ready at %s in %v (log %s)", moto.endpoint, moto.startup.Round(time.Millisecond), moto.logPath)
	})
	return moto
}

// Endpoint returns the base URL of this test binary's moto_server, starting it if needed.
func Endpoint(t testing.TB) string {
	t.Helper()
	return server(t).endpoint
}

// Main runs the tests and then stops moto if they started it. Call it from TestMain:
// os.Exit(testenv.Main(m)). When a test failed, moto's log is kept and its path printed.
func Main(m *testing.M) int {
	code := m.Run()
	stopMoto(code != 0)
	return code
}

func stopMoto(keepLog bool) {
	if moto == nil {
		return
	}
	moto.stop()
	if keepLog {
		fmt.Fprintf(os.Stderr, "testenv: moto_server log kept at %s\n", moto.logPath)
		return
	}
	_ = os.Remove(moto.logPath)
}

func startMoto() (*motoServer, error) {
	argv, err := motoCommand()
	if err != nil {
		return nil, fmt.Errorf("%v; %s", err, installHint)
	}
	logf, err := os.CreateTemp("", "testenv-moto-*.log")
	if err != nil {
		return nil, fmt.Errorf("moto_server log file: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor

	begin := time.Now()
	var lastErr error
	// A free port can be taken between FreePort and moto's bind; then moto exits and a
	// new port is tried.
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launch(argv, port, logf)
		if err == nil {
			s.startup = time.Since(begin)
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errExited) {
			break
		}
	}
	return nil, fmt.Errorf("%v\n%s\n--- tail of %s ---\n%s", lastErr, installHint, logf.Name(), tail(logf.Name(), logTailBytes))
}

// motoCommand finds moto: moto_server on PATH, then in the pyenv shims, then python3 -m
// moto.server the same way.
func motoCommand() ([]string, error) {
	var shims []string
	if root := os.Getenv("PYENV_ROOT"); root != "" {
		shims = append(shims, filepath.Join(root, "shims"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		shims = append(shims, filepath.Join(home, ".pyenv", "shims"))
	}
	find := func(name string) (string, bool) {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
		for _, dir := range shims {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p, true
			}
		}
		return "", false
	}
	if p, ok := find("moto_server"); ok {
		return []string{p}, nil
	}
	if p, ok := find("python3"); ok {
		return []string{p, "-m", "moto.server"}, nil
	}
	return nil, errors.New("neither moto_server nor python3 found on PATH or in ~/.pyenv/shims")
}

// launch starts moto on port and waits until it answers.
func launch(argv []string, port int, logf *os.File) (*motoServer, error) {
	args := append(argv[1:len(argv):len(argv)], "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	type result struct {
		pid int
		err error
	}
	started := make(chan result, 1)
	exited := make(chan struct{})
	go func() {
		// Linux delivers Pdeathsig when the thread that forked the child exits, not the
		// process: pin this goroutine to its thread and keep it alive (in Wait) as long as
		// moto runs. Returning while locked ends the thread, after moto is gone.
		runtime.LockOSThread()
		defer close(exited)
		cmd := exec.Command(argv[0], args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
		cmd.SysProcAttr = sysProcAttr()
		if err := cmd.Start(); err != nil {
			started <- result{err: err}
			return
		}
		started <- result{pid: cmd.Process.Pid}
		_ = cmd.Wait()
	}()
	r := <-started
	if r.err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], r.err)
	}
	s := &motoServer{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		pid:      r.pid,
		exited:   exited,
		logPath:  logf.Name(),
	}
	if err := s.waitReady(readyTimeout); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *motoServer) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("%w (%s)", errExited, s.endpoint)
		default:
		}
		resp, err := client.Get(s.endpoint + "/moto-api/data.json")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s.stillRunning()
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("moto_server at %s did not answer GET /moto-api/data.json within %v", s.endpoint, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stillRunning guards against answering for another server that holds the port while ours
// is failing to bind it.
func (s *motoServer) stillRunning() error {
	select {
	case <-s.exited:
		return fmt.Errorf("%w (%s)", errExited, s.endpoint)
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

func (s *motoServer) stop() {
	_ = killGroup(s.pid)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		fmt.Fprintf(os.Stderr, "testenv: moto_server (pid %d) did not exit after SIGKILL\n", s.pid)
	}
}

// tail returns the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "(" + err.Error() + ")"
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return "(" + err.Error() + ")"
	}
	return string(b)
}
