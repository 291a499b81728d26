package webhooks

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// memory stands in for the store and the queue in the fuzz target, which must run thousands
// of requests a second; the moto-backed tests cover the real ones.
type memory struct {
	seen   map[string]bool
	queued []jobs.Job
}

func (m *memory) Get(context.Context) (clientcreds.Credentials, error) {
	return clientcreds.Credentials{Webhook: creds}, nil
}

func (m *memory) AcceptEvent(_ context.Context, _ installation.ID, key string, _, _ time.Duration) (tokenstore.EventReceipt, error) {
	if m.seen[key] {
		return tokenstore.EventReceipt{}, &tokenstore.EventRefusal{Err: tokenstore.ErrEventSeen}
	}
	m.seen[key] = true
	return tokenstore.EventReceipt{Key: key}, nil
}

func (m *memory) ConfirmEvent(context.Context, tokenstore.EventReceipt, time.Duration) error {
	return nil
}

// WebhookOwner knows webhook 12 of acme's company (the v1 fixture's).
func (m *memory) WebhookOwner(_ context.Context, companyID int64, webhookID string) (installation.ID, error) {
	if companyID == acme.CompanyID && webhookID == "12" {
		return acme, nil
	}
	return installation.ID{}, tokenstore.ErrWebhookUnknown
}

func (m *memory) ForgetEvent(_ context.Context, r tokenstore.EventReceipt) error {
	delete(m.seen, r.Key)
	return nil
}

func (m *memory) Enqueue(_ context.Context, j jobs.Job) error {
	m.queued = append(m.queued, j)
	return nil
}

var (
	_ credentials = (*memory)(nil)
	_ eventLog    = (*memory)(nil)
	_ enqueuer    = (*memory)(nil)
)

// FuzzReceive: any request gives one of the documented answers, never a panic or an error;
// only an accepted delivery enqueues, exactly one valid webhook_event job.
func FuzzReceive(f *testing.F) {
	v1, err := os.ReadFile("../../webhook/testdata/v1_deal_updated.json")
	if err != nil {
		f.Fatal(err)
	}
	good := basic(creds.User, creds.Password)
	f.Add(good, v2("ev-1", "create", 1), false)
	f.Add(good, string(v1), false)
	f.Add("", v2("ev-1", "change", 2), false)
	f.Add(good, "eyJtZXRhIjp7fX0=", true)
	f.Add("Basic !!", "{}", false)
	f.Fuzz(func(t *testing.T, auth, body string, b64 bool) {
		m := &memory{seen: map[string]bool{}}
		h := &handler{creds: m, events: m, jobs: m, log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
		req := events.APIGatewayV2HTTPRequest{Headers: map[string]string{"authorization": auth}, Body: body, IsBase64Encoded: b64}
		req.RequestContext.HTTP.Method = http.MethodPost
		a := h.receive(context.Background(), req)
		resp := respond(a)
		if !json.Valid([]byte(resp.Body)) {
			t.Fatalf("answer %q is not JSON", resp.Body)
		}
		switch resp.StatusCode {
		case 200:
			if resp.Body != okBody {
				t.Fatalf("200 answer (%s/%s) body %q, want %q whatever happened", a.action, a.reason, resp.Body, okBody)
			}
		case 400, 401, 413:
		default:
			t.Fatalf("status %d is not a documented answer", resp.StatusCode)
		}
		if a.action != "accepted" && len(m.queued) != 0 {
			t.Fatalf("%s delivery enqueued %d jobs", a.action, len(m.queued))
		}
		if a.action == "accepted" {
			if len(m.queued) != 1 {
				t.Fatalf("accepted delivery enqueued %d jobs, want 1", len(m.queued))
			}
			if err := m.queued[0].Validate(); err != nil || m.queued[0].Kind != jobs.KindWebhookEvent {
				t.Fatalf("enqueued job %+v invalid: %v", m.queued[0], err)
			}
		}
		if resp.StatusCode == 401 && auth == good {
			t.Fatalf("the right credentials were refused")
		}
	})
}
