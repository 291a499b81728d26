package apicall

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// durationRuns is how many invocations of each kind TestLambdaDurations measures (after a
// first, cold one it leaves out).
const durationRuns = 7

// TestLambdaDurations measures, from the emulator's REPORT lines, what docs/capacity.md prices
// in GB-seconds: the real bootstraps under the Runtime Interface Emulator (2-core x86_64, not
// Lambda's arm64: an indication), against moto and the simulator, durationRuns warm
// invocations of each: a worker batch of one api_call job (a GET at the simulator), one
// webhook delivery through the receiver, one scheduled refresher run with nothing due. It
// prints one line per kind with the median Duration and the Max Memory Used the line gives
// (the emulator writes the function's MemorySize there: it does not measure memory).
func TestLambdaDurations(t *testing.T) {
	w := newCrashWorld(t)
	ctx := t.Context()
	measure := func(kind string, out *testenv.Buffer, invoke func(i int)) {
		t.Helper()
		for i := range durationRuns + 1 {
			invoke(i)
		}
		rs, err := lambdarun.Reports(out.String())
		if err != nil || len(rs) != durationRuns+1 {
			t.Fatalf("%s: %d REPORT lines, %v; want %d", kind, len(rs), err, durationRuns+1)
		}
		rs = rs[1:] // the first invocation pays the cold start's connections
		ds, mems := make([]time.Duration, len(rs)), make([]int, len(rs))
		for i, r := range rs {
			ds[i], mems[i] = r.Duration, r.MaxMemoryUsed
		}
		slices.Sort(ds)
		slices.Sort(mems)
		fmt.Printf("lambda-duration kind=%s runs=%d median_ms=%.1f max_ms=%.1f max_memory_used_mb=%d (emulator on 2-core x86_64, not Lambda's arm64; its Max Memory Used repeats MemorySize, not measured)\n",
			kind, len(rs), float64(ds[len(ds)/2])/float64(time.Millisecond), float64(ds[len(ds)-1])/float64(time.Millisecond), mems[len(mems)/2])
	}

	workerOut := &testenv.Buffer{}
	worker, err := lambdarun.Start(ctx, lambdarun.Options{RIE: w.rie, Bootstrap: w.bootstrap, Name: "ApiCallFunction",
		Env: w.env, Timeout: crashTimeout, Output: io.MultiWriter(workerOut, logSink)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { worker.Close() })
	measure("worker_api_call", workerOut, func(i int) {
		body := encode(t, job("duration-"+strconv.Itoa(i), http.MethodGet, "/api/v1/deals?limit=1", ""))
		if _, err := w.q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(w.queueURL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
		var batch events.SQSEventResponse
		if err := worker.InvokeJSON(ctx, w.receive(ctx), &batch); err != nil || len(batch.BatchItemFailures) != 0 {
			t.Fatalf("worker batch = %+v, %v; want no failures", batch, err)
		}
	})
	if got := w.sim.Counters().APIByRoute["GET /api/v1/deals"]; got != durationRuns+1 {
		t.Errorf("GET /api/v1/deals calls = %d, want %d", got, durationRuns+1)
	}

	receiver, recvOut := testenv.StartFunction(t, "./functions/webhooks", lambdarun.Options{Name: "WebhooksFunction",
		Env: testenv.FunctionEnv(t, w.res, "WebhooksFunction"), Timeout: 10 * time.Second, Output: logSink})
	measure("webhook_delivery", recvOut, func(i int) {
		req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "POST /pipedrive/webhooks", RawPath: "/pipedrive/webhooks",
			Headers: map[string]string{"content-type": "application/json", "authorization": basicAuth(webhookCreds.User, webhookPassword)},
			Body:    deliveryV2("ev-duration-" + strconv.Itoa(i))}
		req.RequestContext.HTTP.Method = http.MethodPost
		var resp events.APIGatewayV2HTTPResponse
		if err := receiver.InvokeJSON(ctx, req, &resp); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("delivery = %d %s, %v; want 200", resp.StatusCode, resp.Body, err)
		}
	})

	refresher, refOut := testenv.StartFunction(t, "./functions/refresher", lambdarun.Options{Name: "RefresherFunction",
		Env: append(testenv.FunctionEnv(t, w.res, "RefresherFunction"), "PIPEDRIVE_OAUTH_URL="+w.sim.URL, pdoauth.EnvAllowLoopback+"=true"), Timeout: 60 * time.Second, Output: logSink})
	measure("refresher_scheduled_run", refOut, func(int) {
		var s map[string]any
		if err := refresher.InvokeJSON(ctx, map[string]any{}, &s); err != nil || s["mode"] != "schedule" {
			t.Fatalf("scheduled run = %v, %v; want a schedule summary", s, err)
		}
	})
}

// basicAuth is the Authorization header of a delivery with the HTTP Basic pair user, pass.
func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// deliveryV2 is a v2 delivery of event eventID (a deal created by the installing user) to the
// default installation's webhook, as in Pipedrive's examples.
func deliveryV2(eventID string) string {
	return `{"meta":{"action":"create","entity":"deal","entity_id":"101","company_id":"` + strconv.FormatInt(acme.CompanyID, 10) +
		`","user_id":"` + strconv.FormatInt(acme.UserID, 10) + `","webhook_owner_id":"` + strconv.FormatInt(acme.UserID, 10) +
		`","id":"` + eventID + `","correlation_id":"c-1","timestamp":"2026-11-30T12:00:01.123Z","version":"2.0","webhook_id":"77",` +
		`"attempt":1,"host":"acme.pipedrive.com","type":"application"},"data":{"id":101,"title":"Big deal"},"previous":null}`
}
