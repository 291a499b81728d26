package lambdarun

import (
	"bytes"
	"slices"
	"testing"
	"time"
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

// TestReportsParsesDurationAndMemory: each REPORT line gives its Duration and Max Memory Used;
// a log line mentioning REPORT is not one, and a REPORT line without a Duration is an error.
func TestReportsParsesDurationAndMemory(t *testing.T) {
	out := "START RequestId: a\n{\"msg\":\"REPORT RequestId: x\tDuration: 9 ms\"}\n" +
		"REPORT RequestId: a\tInit Duration: 3.10 ms\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 3008 MB\tMax Memory Used: 21 MB\n" +
		"REPORT RequestId: b\tDuration: 2.00 ms\tBilled Duration: 2 ms\tMemory Size: 3008 MB\tMax Memory Used: 22 MB\n"
	rs, err := Reports(out)
	want := []Report{{Duration: 12500 * time.Microsecond, MaxMemoryUsed: 21}, {Duration: 2 * time.Millisecond, MaxMemoryUsed: 22}}
	if err != nil || !slices.Equal(rs, want) {
		t.Errorf("Reports = %+v, %v; want %+v", rs, err, want)
	}
	if _, err := Reports("REPORT RequestId: c\tBilled Duration: 2 ms\n"); err == nil {
		t.Error("Reports of a line without Duration = nil error, want one")
	}
}
