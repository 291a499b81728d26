package pdapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// recorded is what an echo server saw of one request.
type recorded struct {
	method, uri, auth, contentType, body string
}

// echoServer answers every request with status, headers and body, and records the last request.
func echoServer(t *testing.T, status int, body string, header ...string) (string, *atomic.Pointer[recorded]) {
	t.Helper()
	last := &atomic.Pointer[recorded]{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		last.Store(&recorded{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, last
}

func TestDoSendsTheRequest(t *testing.T) {
	tests := []struct {
		name, method, path, body, wantContentType string
	}{
		{"GET with query", http.MethodGet, "/api/v2/deals?limit=10&cursor=abc", "", ""},
		{"POST JSON", http.MethodPost, "/api/v2/deals", `{"title":"Deal"}`, "application/json"},
		{"PATCH v2", http.MethodPatch, "/api/v2/deals/7", `{"value":10}`, "application/json"},
		{"DELETE", http.MethodDelete, "/api/v2/deals/7", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, last := echoServer(t, 200, `{"success":true,"data":{"id":7}}`)
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			resp, err := (&pdapi.Client{AllowLoopback: true}).Do(context.Background(), tt.method, url, tt.path, token, body)
			if err != nil {
				t.Fatalf("Do() error = %v", err)
			}
			if resp.Status != 200 || string(resp.Body) != `{"success":true,"data":{"id":7}}` || resp.Truncated {
				t.Errorf("Do() = %d %q truncated %t, want 200 with the body", resp.Status, resp.Body, resp.Truncated)
			}
			got := *last.Load()
			want := recorded{tt.method, tt.path, "Bearer " + token, tt.wantContentType, tt.body}
			if got != want {
				t.Errorf("request = %+v, want %+v", got, want)
			}
		})
	}
}

// TestDoClassifiesEveryAPIRow has one row per line of the API table of Pipedrive's status-code
// page, plus the answers around it.
func TestDoClassifiesEveryAPIRow(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		header     []string
		wantAction pderrors.Action
		wantReason pderrors.Reason
	}{
		{"200 OK", 200, `{"success":true,"data":[]}`, nil, pderrors.Succeed, pderrors.ReasonOK},
		{"201 Created", 201, `{"success":true,"data":{"id":1}}`, nil, pderrors.Succeed, pderrors.ReasonOK},
		{"204 No Content", 204, ``, nil, pderrors.Succeed, pderrors.ReasonOK},
		{"400 malformed authorization header", 400, `{"success":false,"error":"Invalid request: malformed authorization header"}`, nil, pderrors.DeadLetter, pderrors.ReasonMalformedAuthHeader},
		{"400 other", 400, `{"success":false,"error":"Deal title must be given."}`, nil, pderrors.DeadLetter, pderrors.ReasonBadRequest},
		{"401", 401, `{"success":false,"error":"Invalid token: ` + "`access_token`" + ` is invalid"}`, nil, pderrors.RefreshAndRetry, pderrors.ReasonAccessTokenInvalid},
		{"403 scope", 403, `{"success":false,"error":"Scope and URL mismatch","errorCode":403}`, nil, pderrors.DeadLetter, pderrors.ReasonScopeMismatch},
		{"403 HTML", 403, `<!DOCTYPE html><title>Attention Required! | Cloudflare</title>`, []string{"Content-Type", "text/html"}, pderrors.Retry, pderrors.ReasonBlocked},
		{"404", 404, `{"success":false,"error":"Deal not found"}`, nil, pderrors.DeadLetter, pderrors.ReasonNotFound},
		{"410", 410, `{"success":false,"error":"Gone"}`, nil, pderrors.DeadLetter, pderrors.ReasonGone},
		{"422 webhook limit", 422, `{"success":false,"error":"Webhooks limit reached"}`, nil, pderrors.DeadLetter, pderrors.ReasonWebhookLimit},
		{"429", 429, `{"success":false,"error":"Request over limit"}`, []string{"Retry-After", "3"}, pderrors.Retry, pderrors.ReasonRateLimited},
		{"500", 500, `{"success":false,"error":"Internal Server Error"}`, nil, pderrors.Retry, pderrors.ReasonServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, _ := echoServer(t, tt.status, tt.body, tt.header...)
			resp, err := (&pdapi.Client{AllowLoopback: true}).Do(context.Background(), http.MethodGet, url, "/api/v2/deals?owner=secret-filter", token, nil)
			if resp.Status != tt.status {
				t.Errorf("Do().Status = %d, want %d", resp.Status, tt.status)
			}
			if tt.status != 204 && string(resp.Body) != tt.body {
				t.Errorf("Do().Body = %q, want %q", resp.Body, tt.body)
			}
			d := pderrors.DecisionOf(err)
			if d.Action != tt.wantAction || d.Reason != tt.wantReason {
				t.Errorf("DecisionOf(Do() error %v) = %v (%s), want %v (%s)", err, d.Action, d.Reason, tt.wantAction, tt.wantReason)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, pdapi.ErrStatus) || d.Status != tt.status {
				t.Errorf("Do() error = %v (status %d), want ErrStatus with status %d", err, d.Status, tt.status)
			}
			if msg := err.Error(); strings.Contains(msg, token) || strings.Contains(msg, "secret-filter") {
				t.Errorf("Do() error %q contains the token or the query string", msg)
			}
		})
	}
}

func TestDoKeepsAnOversizedSuccess(t *testing.T) {
	big := `{"success":true,"data":"` + strings.Repeat("x", pdapi.MaxBodyBytes) + `"}`
	url, _ := echoServer(t, 200, big)
	resp, err := (&pdapi.Client{AllowLoopback: true}).Do(context.Background(), http.MethodGet, url, "/api/v2/deals", token, nil)
	if err != nil {
		t.Fatalf("Do() error = %v, want nil: the call succeeded at Pipedrive", err)
	}
	if !resp.Truncated || len(resp.Body) != pdapi.MaxBodyBytes {
		t.Errorf("Do() truncated %t, body %d bytes; want truncated at %d", resp.Truncated, len(resp.Body), pdapi.MaxBodyBytes)
	}
}

func TestDoRefusesWithoutSending(t *testing.T) {
	url, last := echoServer(t, 200, `{"success":true}`)
	tests := []struct {
		name, domain, path, token string
		body                      []byte
		wantReason                pderrors.Reason
		wantAlert                 bool
		wantErr                   error
	}{
		{"untrusted domain", "http://evil.example", "/api/v2/deals", token, nil, pdapi.ReasonUntrustedAPIDomain, true, pdoauth.ErrUntrustedAPIDomain},
		{"domain with a path", url + "/api", "/api/v2/deals", token, nil, pdapi.ReasonUntrustedAPIDomain, true, pdoauth.ErrUntrustedAPIDomain},
		{"path outside /api/", url, "/oauth/token", token, nil, pdapi.ReasonInvalidRequest, false, pdapi.ErrInvalidRequest},
		{"body not JSON", url, "/api/v2/deals", token, []byte(`{"title":`), pdapi.ReasonInvalidRequest, false, pdapi.ErrInvalidRequest},
		{"empty token", url, "/api/v2/deals", "", nil, pdapi.ReasonInvalidRequest, false, pdapi.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&pdapi.Client{AllowLoopback: true}).Do(context.Background(), http.MethodPost, tt.domain, tt.path, tt.token, tt.body)
			d := pderrors.DecisionOf(err)
			if d.Action != pderrors.DeadLetter || d.Reason != tt.wantReason || d.Alert != tt.wantAlert {
				t.Errorf("DecisionOf(Do() error %v) = %+v, want DeadLetter (%s) alert %t", err, d, tt.wantReason, tt.wantAlert)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Do() error = %v, want errors.Is %v", err, tt.wantErr)
			}
		})
	}
	if last.Load() != nil {
		t.Errorf("a refused request reached the server")
	}
}

// TestDoTransportErrorOmitsTheQuery: a failure without an answer names the route, never the
// query string (it may carry ids or filters), and still classifies as a retry.
func TestDoTransportErrorOmitsTheQuery(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hang.Close)
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(drop.Close)
	const path = "/api/v2/persons/search?term=jane.doe%40acme.example"
	tests := []struct {
		name   string
		url    string
		client *http.Client
		want   pderrors.Reason
	}{
		{"client timeout", hang.URL, &http.Client{Timeout: 100 * time.Millisecond}, pderrors.ReasonTimeout},
		{"connection dropped", drop.URL, nil, pderrors.ReasonNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&pdapi.Client{AllowLoopback: true, HTTP: tt.client}).Do(context.Background(), http.MethodGet, tt.url, path, token, nil)
			if err == nil {
				t.Fatal("Do() error = nil, want a transport error")
			}
			if strings.Contains(err.Error(), "term=") || strings.Contains(err.Error(), "jane") {
				t.Errorf("Do() error = %q, want no query string", err)
			}
			if !strings.Contains(err.Error(), "GET /api/v2/persons/search") {
				t.Errorf("Do() error = %q, want the route", err)
			}
			if d := pderrors.DecisionOf(err); d.Action != pderrors.Retry || d.Reason != tt.want {
				t.Errorf("DecisionOf(Do() error) = %v (%s), want Retry (%s)", d.Action, d.Reason, tt.want)
			}
		})
	}
}
