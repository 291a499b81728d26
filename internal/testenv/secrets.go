package testenv

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// MinSecretLen is the shortest value Secrets.Add keeps: shorter strings would be found in
// logs by accident.
const MinSecretLen = 8

// Secrets is the set of values a test binary must never log: tokens, authorization codes,
// OAuth states, the client secret, the state key. Tests add every such value as they meet
// it; FoundIn then searches any text for all of them. The zero value is an empty set ready to
// use; it is safe for concurrent use.
type Secrets struct {
	mu     sync.Mutex
	values map[string]string // value → what it is
}

// Add records values as secrets of the given kind ("access token", "state", …), which is
// all FoundIn reports about them. Values shorter than MinSecretLen are ignored.
func (s *Secrets) Add(kind string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string]string{}
	}
	for _, v := range values {
		if len(v) >= MinSecretLen {
			s.values[v] = kind
		}
	}
}

// Len returns how many distinct values the set holds.
func (s *Secrets) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

// FoundIn describes every secret that occurs in text, as is or query-escaped (the form it
// takes in a logged URL), as "kind (N chars)", sorted. It never returns a value itself, so
// its result is safe to print.
func (s *Secrets) FoundIn(text string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []string
	for v, kind := range s.values {
		if strings.Contains(text, v) || strings.Contains(text, url.QueryEscape(v)) {
			found = append(found, fmt.Sprintf("%s (%d chars)", kind, len(v)))
		}
	}
	slices.Sort(found)
	return found
}

// MainCheckingLogs is Main for a test binary that collects its whole run's log in runLog
// (every logger and function output under test writes to it as well) and every secret it
// meets in secrets. It first adds ClientSecret and StateKey to secrets, since Provision puts
// them in every test's secret; after the tests pass it fails the run, naming each leak by
// kind only, if runLog contains any of secrets. Call it from TestMain:
//
//	os.Exit(testenv.MainCheckingLogs(m, logSink, secrets))
func MainCheckingLogs(m *testing.M, runLog *Buffer, secrets *Secrets) int {
	secrets.Add("client secret", ClientSecret)
	secrets.Add("state key", StateKey)
	code := Main(m)
	if code != 0 {
		return code
	}
	if msg := leakReport(runLog.String(), secrets); msg != "" {
		fmt.Fprintln(os.Stderr, msg)
		return 1
	}
	return code
}

// leakReport returns MainCheckingLogs' failure message for log, or "" when it passes.
func leakReport(log string, secrets *Secrets) string {
	leaks := secrets.FoundIn(log)
	if len(leaks) == 0 {
		return ""
	}
	return fmt.Sprintf("FAIL: the run's log contains %d secret(s) seen during the tests: %s", len(leaks), strings.Join(leaks, ", "))
}

// TestLogWriter returns a writer that passes each write, trimmed, to t.Log, so that log
// output shows in a failing (or -v) test's output. Write to it only while t runs.
func TestLogWriter(t testing.TB) io.Writer { return testLogWriter{t} }

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
