package testenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// leakCanaryEnv tells a test binary started by LeakCheckIsLive which run it is: "clean" or
// "leak".
const leakCanaryEnv = "TESTENV_LEAK_CANARY"

// LeakReportPrefix starts MainCheckingLogs' failure message.
const LeakReportPrefix = "FAIL: the run's log contains "

// LeakCheckIsLive proves that the calling test binary's run-wide log-leak check
// (MainCheckingLogs in its TestMain) is live, so that a package whose check is not wired, or
// whose loggers miss the run log, cannot pass unnoticed. It runs the binary twice more with
// only the calling test, which must be a top-level test. In those runs LeakCheckIsLive calls
// plant instead and returns: plant writes through the package's own run-log wiring as its
// tests do, and with leak true it also lets a secret, which it registers, reach that output.
// The clean run must pass, the leaking run must pass its tests and then fail with
// MainCheckingLogs' report naming kind (the kind plant registered the secret under);
// otherwise t fails.
func LeakCheckIsLive(t *testing.T, kind string, plant func(t *testing.T, leak bool)) {
	t.Helper()
	if mode := os.Getenv(leakCanaryEnv); mode != "" {
		plant(t, mode == "leak")
		return
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatalf("LeakCheckIsLive in subtest %s: call it from a top-level test", t.Name())
	}
	run := func(mode string) (string, int) {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), leakCanaryEnv+"="+mode)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &exit):
			return string(out), exit.ExitCode()
		}
		t.Fatalf("LeakCheckIsLive: run %s: %v", mode, err)
		return "", -1
	}
	if out, code := run("clean"); code != 0 || strings.Contains(out, LeakReportPrefix) {
		t.Fatalf("the run without a leak exited %d, want 0 (a clean run must pass the check):\n%s", code, out)
	}
	out, code := run("leak")
	if code != 1 || !testsPassed.MatchString(out) || !strings.Contains(out, LeakReportPrefix) || !strings.Contains(out, kind) {
		t.Errorf("the run that leaks (%s) exited %d, want 1 from the leak check after its tests passed:\n%s", kind, code, out)
	}
}

// testsPassed matches the line a test binary prints when its tests passed.
var testsPassed = regexp.MustCompile(`(?m)^PASS$`)

// RecordSecrets wraps an OAuth server's handler (the simulator's) so that every secret it
// hands out is added to s: access and refresh tokens in token answers, authorization codes and
// states in redirects (states whole only, see AddWhole). Tests whose code under test reads
// tokens it never returns (a stack run end to end) register them this way.
func RecordSecrets(s *Secrets, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &secretRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if loc := w.Header().Get("Location"); loc != "" {
			if u, err := url.Parse(loc); err == nil {
				s.Add("authorization code", u.Query().Get("code"))
				s.AddWhole("state", u.Query().Get("state"))
			}
		}
		var answer struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if json.Unmarshal(rec.body.Bytes(), &answer) == nil {
			s.Add("access token", answer.AccessToken)
			s.Add("refresh token", answer.RefreshToken)
		}
	})
}

// secretRecorder passes a response through and keeps a copy of its JSON body.
type secretRecorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (r *secretRecorder) Write(p []byte) (int, error) {
	if strings.HasPrefix(r.Header().Get("Content-Type"), "application/json") {
		r.body.Write(p)
	}
	return r.ResponseWriter.Write(p)
}

// RecordingClient returns a copy of c whose requests and answers add the secrets they carry
// to s: bearer tokens sent and access and refresh tokens received. Tests give it to the OAuth
// and API clients under test, so that a token refreshed inside the code is registered too.
func RecordingClient(s *Secrets, c *http.Client) *http.Client {
	cc := *c
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cc.Transport = recordingTransport{s: s, base: base}
	return &cc
}

type recordingTransport struct {
	s    *Secrets
	base http.RoundTripper
}

func (t recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		t.s.Add("access token", tok)
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, nil // the caller meets the short body as it would have
	}
	var answer struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &answer) == nil {
		t.s.Add("access token", answer.AccessToken)
		t.s.Add("refresh token", answer.RefreshToken)
	}
	return resp, nil
}
