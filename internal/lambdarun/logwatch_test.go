package lambdarun

import (
	"bytes"
	"testing"
)

// TestLogWatchCountsReportLines: REPORT lines are counted however the pipe splits them, only
// at a line's start, and everything passes through unchanged.
func TestLogWatchCountsReportLines(t *testing.T) {
	text := "START RequestId: a Version: $LATEST\n{\"msg\":\"REPORT RequestId: in a log line\"}\n" +
		"END RequestId: a\nREPORT RequestId: a\tDuration: 1 ms\nREPORT RequestId: b\tDuration: 2 ms\nREPORT Requ"
	for _, size := range []int{1, 3, 7, len(text)} {
		var out bytes.Buffer
		l := newLogWatch(&out)
		for p := []byte(text); len(p) > 0; {
			n := min(size, len(p))
			if _, err := l.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if n, _ := l.state(); n != 2 {
			t.Errorf("writes of %d bytes: %d REPORT lines, want 2", size, n)
		}
		if out.String() != text {
			t.Errorf("writes of %d bytes: output changed", size)
		}
	}
}
