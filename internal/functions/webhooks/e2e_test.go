package webhooks

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// TestBootstrapUnderEmulator builds the real bootstrap and runs it under the Lambda Runtime
// Interface Emulator with the template's environment: main.go's wiring (secret, table, queue)
// and the answers to an accepted, a repeated and an unauthorized delivery.
func TestBootstrapUnderEmulator(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	e := newEnv(t)
	e.install(acme)
	f, logs := testenv.StartFunction(t, "./functions/webhooks", lambdarun.Options{
		Name:    "WebhooksFunction",
		Env:     testenv.FunctionEnv(t, e.res, "WebhooksFunction"),
		Timeout: 10 * time.Second,
		Output:  io.MultiWriter(&runLog, testenv.TestLogWriter(t)),
	})
	send := func(auth, body string) (int, string) {
		req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "POST /pipedrive/webhooks", RawPath: "/pipedrive/webhooks",
			Headers: map[string]string{"content-type": "application/json", "authorization": auth}, Body: body}
		req.RequestContext.HTTP.Method = http.MethodPost
		var resp events.APIGatewayV2HTTPResponse
		if err := f.InvokeJSON(ctx, req, &resp); err != nil {
			t.Fatalf("invoke = %v", err)
		}
		return resp.StatusCode, resp.Body
	}
	good := basic(creds.User, creds.Password)
	if st, body := send(good, v2("ev-e2e", "create", 1)); st != 200 || body != okBody {
		t.Fatalf("delivery = %d %s, want 200 %s", st, body, okBody)
	}
	if st, body := send(good, v2("ev-e2e", "create", 2)); st != 200 || body != okBody {
		t.Fatalf("retried delivery = %d %s, want 200 %s", st, body, okBody)
	}
	if st, _ := send(basic(creds.User, "guess"), v2("ev-e2e-2", "create", 1)); st != 401 {
		t.Fatalf("wrong password = %d, want 401", st)
	}
	if got := e.queued(); len(got) != 1 || got[0].ID != "webhook#3408256:5206648#ev-e2e" {
		t.Fatalf("queued %v, want the one accepted event", got)
	}
	// Every line of every invocation carries its Lambda request id (one line per delivery).
	if n := testenv.CheckRequestIDs(t, logs); n < 3 {
		t.Errorf("checked %d log lines of the invocations for their request id, want one per delivery (3)", n)
	}
}
