package callback

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// TestBootstrapUnderEmulator builds the real bootstrap and runs it under the Lambda Runtime
// Interface Emulator with the template's environment: main.go's wiring (secret, table, queue,
// topic), the install redirect and a refused uninstall, each logged with its invocation's
// request id.
func TestBootstrapUnderEmulator(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	res := testenv.Provision(t)
	sim := pdsimtest.New(t, pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret, RedirectURI: redirectURI})
	f, logs := testenv.StartFunction(t, "./functions/callback", lambdarun.Options{
		Name:    "CallbackFunction",
		Env:     append(testenv.FunctionEnv(t, res, "CallbackFunction"), "REDIRECT_URI="+redirectURI, "PIPEDRIVE_OAUTH_URL="+sim.URL),
		Timeout: 15 * time.Second,
		Output:  io.MultiWriter(logSink, testenv.TestLogWriter(t)),
	})
	invoke := func(file string, edit func(*events.APIGatewayV2HTTPRequest)) events.APIGatewayV2HTTPResponse {
		t.Helper()
		b, err := os.ReadFile("testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(&req)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := f.InvokeJSON(ctx, req, &resp); err != nil {
			t.Fatalf("invoke %s = %v", file, err)
		}
		return resp
	}
	if resp := invoke("install.json", nil); resp.StatusCode != 302 || resp.Headers["Location"] == "" && resp.Headers["location"] == "" {
		t.Errorf("GET /oauth/install = %d %v, want a 302 to Pipedrive's authorize page", resp.StatusCode, resp.Headers)
	}
	wrong := func(r *events.APIGatewayV2HTTPRequest) { r.Headers["authorization"] = "Basic d3Jvbmc6d3Jvbmc=" }
	if resp := invoke("uninstall.json", wrong); resp.StatusCode != 401 {
		t.Errorf("DELETE /oauth/callback with a wrong secret = %d, want 401", resp.StatusCode)
	}
	// Every line of every invocation carries its Lambda request id (one line per request).
	if n := testenv.CheckRequestIDs(t, logs); n < 2 {
		t.Errorf("checked %d log lines of the invocations for their request id, want one per request (2)", n)
	}
}
