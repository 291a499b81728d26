package testenv

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
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
	whole  map[string]bool   // values found only whole (AddWhole)
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

// AddWhole records values that FoundIn must find whole (as is, escaped or base64) but not by
// their pieces: values with public structure, such as OAuth states, whose encoded timestamp
// repeats from one state to the next.
func (s *Secrets) AddWhole(kind string, values ...string) {
	s.Add(kind, values...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.whole == nil {
		s.whole = map[string]bool{}
	}
	for _, v := range values {
		s.whole[v] = true
	}
}

// Len returns how many distinct values the set holds.
func (s *Secrets) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

// PartialLen is the shortest piece of a secret FoundIn looks for: a log that cuts a token
// short (a "first 16 characters" debug line, a truncated error) still leaks most of it.
const PartialLen = 12

// FoundIn describes every secret that occurs in text as "kind (N chars)", sorted. It finds a
// secret as is, query-escaped or JSON-escaped (the forms it takes in a logged URL or JSON
// document), any piece of it of PartialLen or more characters (a truncated value), and
// inside any base64 run of text (standard or URL alphabet, padded or not), so a logged HTTP
// Basic header or a base64-encoded body is caught too. It never returns a value itself, so
// its result is safe to print.
func (s *Secrets) FoundIn(text string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := map[string]bool{}
	type wholeForm struct{ form, label string }
	var wholes []wholeForm
	pieces := map[string]string{} // every PartialLen-long piece of every form → "kind (N chars)"
	for v, kind := range s.values {
		label := fmt.Sprintf("%s (%d chars)", kind, len(v))
		js, _ := json.Marshal(v)
		for _, form := range []string{v, url.QueryEscape(v), string(js[1 : len(js)-1])} {
			if strings.Contains(text, form) {
				found[label] = true
			}
			if s.whole[v] {
				wholes = append(wholes, wholeForm{form, label})
				continue
			}
			// Pieces come from the secret part only: Pipedrive's refresh tokens start with
			// "<company>:<user>:" and access tokens with "v1u:", public structure that ids
			// in logs repeat ("register_webhooks:3408256:5206648:v1" would otherwise match
			// a token whose random part starts with "v").
			core := secretPart(form)
			for i := 0; i+PartialLen <= len(core); i++ {
				if piece := core[i : i+PartialLen]; strings.IndexFunc(piece, unicode.IsLetter) >= 0 {
					pieces[piece] = label
				}
			}
		}
	}
	scan := func(t string) {
		for _, w := range wholes {
			if strings.Contains(t, w.form) {
				found[w.label] = true
			}
		}
		for i := 0; i+PartialLen <= len(t); i++ {
			if label, ok := pieces[t[i:i+PartialLen]]; ok {
				found[label] = true
			}
		}
	}
	scan(text)
	for _, run := range base64Run.FindAllString(text, -1) {
		run = strings.TrimRight(run, "=")
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			// Every alignment: the run may start inside a longer encoded value. Whole
			// quanta only, so a partial last quantum does not fail the decode.
			for off := 0; off < 4 && off < len(run); off++ {
				r := run[off:]
				r = r[:len(r)-len(r)%4]
				if b, err := enc.DecodeString(r); err == nil {
					scan(string(b))
				}
			}
		}
	}
	out := make([]string, 0, len(found))
	for label := range found {
		out = append(out, label)
	}
	slices.Sort(out)
	return out
}

// secretPart drops a token's public prefix: the "<company>:<user>:" of a refresh token
// (digits each followed by a colon, escaped colons included) and "v1u:". Digits not followed
// by a colon are the secret's own: an access token's random part may start with one, and a
// debug line with its first 16 characters ("v1u:" and 12 of them) must still be caught.
func secretPart(v string) string {
	for {
		before := v
		if digits := strings.TrimLeft(v, "0123456789"); len(digits) < len(v) {
			for _, colon := range []string{":", "%3A"} {
				if rest, ok := strings.CutPrefix(digits, colon); ok {
					v = rest
					break
				}
			}
		}
		v = strings.TrimPrefix(v, "v1u:")
		v = strings.TrimPrefix(v, "v1u%3A")
		if v == before {
			return v
		}
	}
}

// base64Run matches text that may be base64: 16 or more characters of either alphabet.
var base64Run = regexp.MustCompile(`[A-Za-z0-9+/_-]{16,}={0,2}`)

// MainCheckingLogs is Main for a test binary that collects its whole run's log in runLog
// (every logger and function output under test writes to it as well) and every secret it
// meets in secrets. It first adds ClientSecret, StateKey and WebhookKey to secrets, since Provision puts
// them in every test's secret; after the tests pass it fails the run, naming each leak by
// kind only, if runLog contains any of secrets. Call it from TestMain:
//
//	os.Exit(testenv.MainCheckingLogs(m, logSink, secrets))
func MainCheckingLogs(m *testing.M, runLog *Buffer, secrets *Secrets) int {
	secrets.Add("client secret", ClientSecret)
	secrets.Add("state key", StateKey)
	secrets.Add("webhook key", WebhookKey)
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
	return fmt.Sprintf(LeakReportPrefix+"%d secret(s) seen during the tests: %s", len(leaks), strings.Join(leaks, ", "))
}

// TestLogWriter returns a writer that passes each write, trimmed, to t.Log, so that log
// output shows in a failing (or -v) test's output. Write to it only while t runs.
func TestLogWriter(t testing.TB) io.Writer { return testLogWriter{t} }

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
