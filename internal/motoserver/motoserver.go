// Package motoserver starts and stops moto_server, the AWS emulator that stands in for
// DynamoDB, Secrets Manager, SQS and SNS in tests and in the local stack.
package motoserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// InstallHint tells a person how to get moto where it is missing.
const InstallHint = `install it with: pip install "moto[server]>=5.2" cfn-lint`

// ErrNotInstalled is returned when neither moto_server nor `python3 -m moto.server` can run.
var ErrNotInstalled = errors.New("motoserver: moto_server not found; " + InstallHint)

// Options configure Start.
type Options struct {
	// Port to bind on 127.0.0.1; 0 picks a free one.
	Port int
	// LogFile receives moto's output; empty uses a temporary file.
	LogFile string
	// StartTimeout bounds the wait for moto to answer; default 30 s.
	StartTimeout time.Duration
}

// Server is a running moto_server.
type Server struct {
	// URL is the endpoint to give the AWS SDK (AWS_ENDPOINT_URL), e.g. http://127.0.0.1:41234.
	URL string
	// LogFile holds moto's output.
	LogFile string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// Command returns the argv that runs moto: moto_server from PATH or the pyenv shims, else
// python3 -m moto.server when the moto package is importable.
func Command() ([]string, error) {
	if p, err := exec.LookPath("moto_server"); err == nil {
		return []string{p}, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".pyenv", "shims", "moto_server")
		if _, err := os.Stat(p); err == nil {
			return []string{p}, nil
		}
	}
	for _, py := range []string{"python3", "python"} {
		p, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import moto.server").Run() == nil {
			return []string{p, "-m", "moto.server"}, nil
		}
	}
	return nil, ErrNotInstalled
}

// Start runs moto_server on 127.0.0.1 and waits until it answers. Close stops it.
func Start(ctx context.Context, o Options) (*Server, error) {
	argv, err := Command()
	if err != nil {
		return nil, err
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	port := o.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	logPath := o.LogFile
	var logFile *os.File
	if logPath == "" {
		logFile, err = os.CreateTemp("", "moto-*.log")
	} else {
		logFile, err = os.Create(logPath)
	}
	if err != nil {
		return nil, fmt.Errorf("motoserver: log file: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	args := append(argv[1:], "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd := exec.Command(argv[0], args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("motoserver: start %s: %w", argv[0], err)
	}
	s := &Server{
		URL:     "http://127.0.0.1:" + strconv.Itoa(port),
		LogFile: logFile.Name(),
		cmd:     cmd,
		done:    make(chan struct{}),
	}
	go func() { s.waitErr = cmd.Wait(); close(s.done) }()
	if err := s.wait(ctx, o.StartTimeout); err != nil {
		s.Close()
		return nil, fmt.Errorf("%w\n--- moto output (%s) ---\n%s", err, s.LogFile, s.LogTail(2000))
	}
	return s, nil
}

func (s *Server) wait(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(s.URL + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("motoserver: moto exited at start: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("motoserver: start: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("motoserver: no answer from %s after %s", s.URL, timeout)
		}
	}
}

// LogTail returns up to the last n bytes of moto's output.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogFile)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// Close stops moto and everything it started.
func (s *Server) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("motoserver: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
