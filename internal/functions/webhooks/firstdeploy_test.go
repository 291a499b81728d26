package webhooks

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// TestBootstrapNotConfigured runs the real bootstrap under the emulator with the template's
// environment and the secret of a first deploy (client id and secret still REPLACE_ME): it
// starts (no crash: no Lambda error, no alarm), says "not configured" once at its cold start,
// and answers a delivery 503 not_configured (logged as a warning, nothing kept or enqueued).
func TestBootstrapNotConfigured(t *testing.T) {
	e := newEnv(t)
	testenv.AsFirstDeployed(t, e.res)
	var logs testenv.Buffer
	f, _ := testenv.StartFunction(t, "./functions/webhooks", lambdarun.Options{
		Name:    "WebhooksFunction",
		Env:     testenv.FunctionEnv(t, e.res, "WebhooksFunction"),
		Timeout: 10 * time.Second,
		Output:  io.MultiWriter(&logs, &runLog, testenv.TestLogWriter(t)),
	})
	for range 2 {
		req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "POST /pipedrive/webhooks", RawPath: "/pipedrive/webhooks",
			Headers: map[string]string{"content-type": "application/json", "authorization": basic(creds.User, creds.Password)},
			Body:    v2("ev-first", "create", 1)}
		req.RequestContext.HTTP.Method = http.MethodPost
		var resp events.APIGatewayV2HTTPResponse
		if err := f.InvokeJSON(t.Context(), req, &resp); err != nil {
			t.Fatalf("invoke = %v, want an answer (no function error)", err)
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Body != `{"reason":"client_credentials_placeholder","status":"not_configured"}` {
			t.Errorf("delivery = %d %s, want 503 not_configured", resp.StatusCode, resp.Body)
		}
	}
	if got := e.queued(); len(got) != 0 {
		t.Errorf("queued %v, want nothing", got)
	}
	out := logs.String()
	if got := strings.Count(out, "webhooks: not configured: "); got != 1 {
		t.Errorf("not-configured lines = %d, want 1 (the cold start):\n%s", got, out)
	}
	if strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("log has an ERROR line:\n%s", out)
	}
}
