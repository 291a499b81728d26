package testenv

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	// The emulator's markers of one invocation: INVOKE START after the function's init (if
	// any), END once it answered.
	invokeStartRE = regexp.MustCompile(`INVOKE START\(requestId: ([0-9a-fA-F-]+)\)`)
	invokeEndRE   = regexp.MustCompile(`^END RequestId: ([0-9a-fA-F-]+)`)
	endLinesRE    = regexp.MustCompile(`(?m)^\s*END RequestId: `)
)

// CheckRequestIDs reads the output of a function run under the emulator (StartFunction's
// logs), once every invocation begun in it has ended there (the output is copied from the
// emulator's pipe a moment after Invoke returns; it waits up to 10 s), and fails t for every log line (a JSON object with "level" and "msg") written during
// an invocation that does not carry that invocation's request id in "request_id"
// (internal/lambdalog). Lines of the cold start, before the first invocation begins, and the
// metric lines (Embedded Metric Format, no "msg") are not log lines of an invocation. It
// returns how many lines it checked, so a caller can require that the function logged.
func CheckRequestIDs(t testing.TB, logs *Buffer) int {
	t.Helper()
	out := logs.String()
	for deadline := time.Now().Add(10 * time.Second); ; out = logs.String() {
		if len(invokeStartRE.FindAllString(out, -1)) == len(endLinesRE.FindAllString(out, -1)) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("testenv: an invocation has not ended in the function's output after 10 s")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	current, checked := "", 0
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if m := invokeStartRE.FindStringSubmatch(line); m != nil {
			current = m[1]
			continue
		}
		if m := invokeEndRE.FindStringSubmatch(line); m != nil {
			current = ""
			continue
		}
		if current == "" || !strings.HasPrefix(line, "{") {
			continue
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if _, ok := rec["msg"]; !ok {
			continue
		}
		if _, ok := rec["level"]; !ok {
			continue
		}
		checked++
		if got, _ := rec["request_id"].(string); got != current {
			t.Errorf("log line of invocation %s carries request_id %q, want %q: %s", current, got, current, line)
		}
	}
	return checked
}
