package webhooks

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// TestBootstrapUnderEmulator builds the real bootstrap and runs it under the Lambda Runtime
// Interface Emulator with the template's environment: main.go's wiring (webhook key secret,
// table, queue; no client secret) and the answers to an accepted, a repeated and an
// unauthorized delivery, and to company A's credentials on company B's payload: 401 and nothing
// written (B's own delivery of that event is then accepted, not a duplicate).
func TestBootstrapUnderEmulator(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	e := newEnv(t)
	e.install(acme)
	e.install(other)
	env := testenv.FunctionEnv(t, e.res, "WebhooksFunction")
	for _, kv := range env {
		if strings.HasPrefix(kv, "CLIENT_SECRET_ID=") && kv != "CLIENT_SECRET_ID=" {
			t.Fatalf("the template gives the receiver %s, want no client secret", kv)
		}
	}
	f, _ := testenv.StartFunction(t, "./functions/webhooks", lambdarun.Options{
		Name:    "WebhooksFunction",
		Env:     env,
		Timeout: 10 * time.Second,
		Output:  io.MultiWriter(&runLog, testenv.TestLogWriter(t)),
	})
	send := func(auth, body string) (int, string, string) {
		req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "POST /pipedrive/webhooks", RawPath: "/pipedrive/webhooks",
			Headers: map[string]string{"content-type": "application/json", "authorization": auth}, Body: body}
		req.RequestContext.HTTP.Method = http.MethodPost
		var resp events.APIGatewayV2HTTPResponse
		if err := f.InvokeJSON(ctx, req, &resp); err != nil {
			t.Fatalf("invoke = %v", err)
		}
		_, act, reason := reply(t, resp)
		return resp.StatusCode, act, reason
	}
	good := basic(creds.User, creds.Password)
	if st, act, _ := send(good, v2("ev-e2e", "create", 1)); st != 200 || act != "accepted" {
		t.Fatalf("delivery = %d %s, want 200 accepted", st, act)
	}
	if st, act, _ := send(good, v2("ev-e2e", "create", 2)); st != 200 || act != "duplicate" {
		t.Fatalf("retried delivery = %d %s, want 200 duplicate", st, act)
	}
	if st, act, _ := send(basic(creds.User, "guess"), v2("ev-e2e-2", "create", 1)); st != 401 || act != "rejected" {
		t.Fatalf("wrong password = %d %s, want 401 rejected", st, act)
	}
	// Company A's credentials on company B's payload.
	if st, act, reason := send(good, v2For(other, "ev-b", "create", 1)); st != 401 || act != "rejected" || reason != "installation_mismatch" {
		t.Fatalf("A's credentials on B's payload = %d %s %s, want 401 rejected installation_mismatch", st, act, reason)
	}
	b := webhook.InstallationCredentials([]byte(testenv.WebhookKey), other)
	if st, act, _ := send(basic(b.User, b.Password), v2For(other, "ev-b", "create", 2)); st != 200 || act != "accepted" {
		t.Fatalf("B's own delivery of the event A's credentials tried = %d %s, want 200 accepted (nothing was written before)", st, act)
	}
	var ids []string
	for _, j := range e.queued() {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	if want := []string{"webhook#3408256:5206648#ev-e2e", "webhook#7700001:42#ev-b"}; !slices.Equal(ids, want) {
		t.Fatalf("queued %v, want %v", ids, want)
	}
}
