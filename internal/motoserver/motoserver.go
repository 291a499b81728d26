// Package motoserver finds, starts and stops moto_server, the AWS emulator that stands in for
// DynamoDB, Secrets Manager, SQS and SNS in tests (through testenv) and in the local stack.
package motoserver

import (
	"context"
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
	"syscall"
	"time"
)

// InstallHint tells a person how to get moto where it is missing or does not start.
const InstallHint = `install it with: pip install "moto[server]>=5.2" cfn-lint ` +
	`(motoserver runs moto_server, or python3 -m moto.server, from PATH or the pyenv shims)`

// ErrNotInstalled is returned when neither moto_server nor `python3 -m moto.server` can run.
var ErrNotInstalled = errors.New("motoserver: moto_server not found; " + InstallHint)

// errExited means moto exited before it answered, typically because its port was taken
// between picking it and binding it.
var errExited = errors.New("motoserver: moto_server exited before it was ready")

const (
	// portTries is how many ports Start tries when it picks them itself.
	portTries = 3
	// logTailBytes is how much of moto's output an error from Start quotes.
	logTailBytes = 4 << 10
	// stopGrace is how long Close waits after each signal.
	stopGrace = 5 * time.Second
)

// Options configure Start.
type Options struct {
	// Port to bind on 127.0.0.1; 0 picks a free one, and another if moto exits because the
	// port was taken in the meantime.
	Port int
	// LogFile receives moto's output; empty uses a new temporary file. Start and Close
	// never remove it: Server.LogFile names it, and a failed Start names it in the error.
	LogFile string
	// StartTimeout bounds the wait for each moto started to answer; default 30 s.
	StartTimeout time.Duration
}

// Server is a running moto_server.
type Server struct {
	// URL is the endpoint to give the AWS SDK (AWS_ENDPOINT_URL), e.g. http://127.0.0.1:41234.
	URL string
	// LogFile holds moto's output.
	LogFile string
	// Startup is how long moto took to answer, retries on a taken port included.
	Startup time.Duration
	pid     int
	exited  chan struct{} // closed once the process has exited and waitErr is set
	waitErr error
}

// Command returns the argv that runs moto: moto_server from PATH or the pyenv shims, else
// python3 (or python) -m moto.server where that interpreter can import moto.server.
func Command() ([]string, error) {
	if p, ok := find("moto_server"); ok {
		return []string{p}, nil
	}
	for _, py := range []string{"python3", "python"} {
		if p, ok := find(py); ok && exec.Command(p, "-c", "import moto.server").Run() == nil {
			return []string{p, "-m", "moto.server"}, nil
		}
	}
	return nil, ErrNotInstalled
}

// find looks name up on PATH, then in the pyenv shims ($PYENV_ROOT/shims, ~/.pyenv/shims),
// which a non-interactive shell may not have on PATH.
func find(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	var dirs []string
	if root := os.Getenv("PYENV_ROOT"); root != "" {
		dirs = append(dirs, filepath.Join(root, "shims"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".pyenv", "shims"))
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// Start runs moto_server on 127.0.0.1 and waits until it answers. Close stops it. If moto
// cannot start, the error carries InstallHint and the tail of moto's output.
func Start(ctx context.Context, o Options) (*Server, error) {
	return start(ctx, o, func() (int, error) { return bindable(o.Port) })
}

// start is Start with the port picker as a parameter, so that tests can hand out a taken port.
func start(ctx context.Context, o Options, pick func() (int, error)) (*Server, error) {
	argv, err := Command()
	if err != nil {
		return nil, err
	}
	port, err := pick()
	if err != nil {
		return nil, err
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	var logFile *os.File
	if o.LogFile == "" {
		logFile, err = os.CreateTemp("", "moto-*.log")
	} else {
		logFile, err = os.Create(o.LogFile)
	}
	if err != nil {
		return nil, fmt.Errorf("motoserver: log file: %w", err)
	}
	defer logFile.Close() // each child holds its own descriptor

	tries := 1
	if o.Port == 0 {
		tries = portTries
	}
	begin := time.Now()
	for try := 1; ; try++ {
		s, err := launch(ctx, argv, port, logFile, o.StartTimeout)
		if err == nil {
			s.Startup = time.Since(begin)
			return s, nil
		}
		// Only a moto that exited, its port taken since it was picked, is worth another port.
		if errors.Is(err, errExited) && try < tries {
			if port, err = pick(); err == nil {
				continue
			}
		}
		hint := "\n" + InstallHint
		if ctx.Err() != nil {
			hint = "" // moto was not at fault
		}
		return nil, fmt.Errorf("%w%s\n--- tail of %s ---\n%s", err, hint, logFile.Name(), tail(logFile.Name(), logTailBytes))
	}
}

// launch starts moto on port, writing to logFile, and waits until it answers.
func launch(ctx context.Context, argv []string, port int, logFile *os.File, timeout time.Duration) (*Server, error) {
	args := append(argv[1:len(argv):len(argv)], "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s := &Server{
		URL:     "http://127.0.0.1:" + strconv.Itoa(port),
		LogFile: logFile.Name(),
		exited:  make(chan struct{}),
	}
	started := make(chan error, 1)
	go func() {
		// Linux delivers Pdeathsig when the thread that forked the child exits, not the
		// process: pin this goroutine to its thread and keep it alive (in Wait) as long as
		// moto runs. Returning while locked ends the thread, after moto is gone.
		runtime.LockOSThread()
		defer close(s.exited)
		cmd := exec.Command(argv[0], args...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		// Unbuffered, so that the log tail in an error holds moto's last words.
		cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
		cmd.SysProcAttr = sysProcAttr()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		s.pid = cmd.Process.Pid
		started <- nil
		s.waitErr = cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("motoserver: start %s: %w", argv[0], err)
	}
	if err := s.waitReady(ctx, timeout); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// waitReady polls GET /moto-api/data.json until it answers 200, moto exits, ctx ends or
// timeout passes.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/moto-api/data.json", nil)
		if err != nil {
			return fmt.Errorf("motoserver: probe: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s.stillRunning()
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("motoserver: no answer from %s/moto-api/data.json within %v", s.URL, timeout)
		}
		select {
		case <-s.exited:
			return s.exitErr()
		case <-ctx.Done():
			return fmt.Errorf("motoserver: start: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stillRunning guards against taking the answer of another server, which took the port
// after it was picked, for ours: ours then exits, failing to bind it.
func (s *Server) stillRunning() error {
	select {
	case <-s.exited:
		return s.exitErr()
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

// exitErr describes moto's exit; call it only once s.exited is closed.
func (s *Server) exitErr() error {
	return fmt.Errorf("%w (%s): %v", errExited, s.URL, s.waitErr)
}

// LogTail returns up to the last n bytes of moto's output, without surrounding white space;
// empty if the log cannot be read.
func (s *Server) LogTail(n int) string {
	return strings.TrimSpace(tail(s.LogFile, int64(n)))
}

// Close stops moto and everything it started: SIGTERM to its process group, SIGKILL if it
// is still running 5 s later. Closing a stopped server does nothing. The log stays.
func (s *Server) Close() error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		select {
		case <-s.exited:
			return nil
		default:
		}
		_ = signalGroup(s.pid, sig)
		select {
		case <-s.exited:
			return nil
		case <-time.After(stopGrace):
		}
	}
	return fmt.Errorf("motoserver: moto_server (pid %d) did not exit after SIGKILL", s.pid)
}

// tail returns up to the last n bytes of the file at path; empty if it cannot be read.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return string(b)
}

// bindable returns port if 127.0.0.1:port can be bound now, or, for port 0, a free port.
func bindable(port int) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, fmt.Errorf("motoserver: port %d: %w", port, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
