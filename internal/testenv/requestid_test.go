package testenv_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Helper() {}

// TestCheckRequestIDsFindsALineWithout: a log line inside an invocation without its request id
// (or with another's) is reported; cold-start lines and metric lines are not checked.
func TestCheckRequestIDsFindsALineWithout(t *testing.T) {
	const id = "3d6ee8e5-acba-4e98-840a-df4abfc331ac"
	run := func(lines ...string) (int, []string) {
		var b testenv.Buffer
		b.Write([]byte(strings.Join(append([]string{
			"START RequestId: " + id + " Version: $LATEST",
			`{"time":"t","level":"INFO","msg":"cold start"}`,
			"07 Dec 2026 07:14:25,073 [INFO] (rapid) INVOKE START(requestId: " + id + ")",
			`{"Function":"callback","OAuthRequests":1,"_aws":{}}`,
		}, append(lines, "END RequestId: "+id, "REPORT RequestId: "+id)...), "\n")))
		r := &recorder{TB: t}
		return testenv.CheckRequestIDs(r, &b), r.errs
	}
	if n, errs := run(`{"level":"INFO","msg":"ok","request_id":"` + id + `"}`); n != 1 || len(errs) != 0 {
		t.Errorf("a line with its request id: checked %d, errors %v; want 1, none", n, errs)
	}
	if n, errs := run(`{"level":"WARN","msg":"no id"}`); n != 1 || len(errs) != 1 {
		t.Errorf("a line without a request id: checked %d, errors %v; want 1 error", n, errs)
	}
	if _, errs := run(`{"level":"WARN","msg":"other id","request_id":"0000"}`); len(errs) != 1 {
		t.Errorf("a line with another request id: errors %v; want 1", errs)
	}
}
