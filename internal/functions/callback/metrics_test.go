package callback

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
)

// TestAnswersWriteEMF: every answer of the callback is counted by outcome and reason, read
// back from the EMF lines; no id becomes a dimension.
func TestAnswersWriteEMF(t *testing.T) {
	e := newEnv(t)
	var out bytes.Buffer
	e.h.Metrics = &metrics.Emitter{Out: &out, Function: "callback"}
	e.handle(loadEvent(t, "install.json"))
	wantPage(t, e.callback(e.issueCode(), ""), http.StatusOK, "The app is installed")
	e.callback("unknown-code-123456", "")

	pts, err := metrics.Parse(&out)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, out.String())
	}
	if got := metrics.Sum(pts, metrics.OAuthRequests); got != 3 {
		t.Errorf("OAuthRequests = %v, want 3 (install redirect, install, unknown code)", got)
	}
	if got := metrics.Sum(pts, metrics.OAuthRequests, metrics.Outcome("redirect")); got != 1 {
		t.Errorf("OAuthRequests{redirect} = %v, want 1", got)
	}
	if got := metrics.Sum(pts, metrics.OAuthRequests, metrics.Outcome("succeed"), metrics.Reason("installed")); got != 1 {
		t.Errorf("OAuthRequests{succeed, installed} = %v, want 1\n%s", got, out.String())
	}
	if got := metrics.Sum(pts, metrics.OAuthRequests, metrics.Outcome("reject"), metrics.Reason("authorization_code_invalid")); got != 1 {
		t.Errorf("OAuthRequests{reject, authorization_code_invalid} = %v, want 1", got)
	}
	if got := metrics.Sum(pts, metrics.ServerErrors); got != 0 {
		t.Errorf("ServerErrors = %v after a redirect, an install and a rejected code, want 0", got)
	}
	// Pipedrive's token endpoint stays down: the user sees a 503, which the 5xx alarm counts.
	out.Reset()
	e.inject(pdsim.Fault{Path: "/oauth/token", Status: 503})
	wantPage(t, e.callback(e.issueCode(), ""), http.StatusServiceUnavailable, "Pipedrive is not answering")
	pts, err = metrics.Parse(&out)
	if err != nil {
		t.Fatal(err)
	}
	if got := metrics.Sum(pts, metrics.ServerErrors); got != 1 {
		t.Errorf("ServerErrors after a 503 answer = %v, want 1\n%s", got, out.String())
	}
	if s := out.String(); strings.Contains(s, "3408256") || strings.Contains(s, "5206648") {
		t.Errorf("EMF lines carry company or user ids:\n%s", s)
	}
}
