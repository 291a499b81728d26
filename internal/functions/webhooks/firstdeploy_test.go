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
// environment and the secret of a first deploy (client id and secret still REPLACE_ME): the
// receiver never reads the client secret (only the webhook key secret, generated at deploy), so
// it starts and works as usual: no "not configured", no error, and a delivery for an
// installation that does not exist yet is answered 200 and dropped (nothing enqueued).
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
		if resp.StatusCode != http.StatusOK || resp.Body != okBody {
			t.Errorf("delivery = %d %s, want 200 %s", resp.StatusCode, resp.Body, okBody)
		}
	}
	if got := e.queued(); len(got) != 0 {
		t.Errorf("queued %v, want nothing", got)
	}
	out := logs.String()
	if got := strings.Count(out, "not configured"); got != 0 || !strings.Contains(out, `"reason":"installation_not_found"`) {
		t.Errorf("not-configured lines = %d, want 0, and the delivery dropped as installation_not_found:\n%s", got, out)
	}
	if strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("log has an ERROR line:\n%s", out)
	}
}
