package apigw_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/pdkit/pipedrive-lambda-kit/internal/apigw"
)

// funcInvoker adapts a function to apigw.Invoker.
type funcInvoker func(ctx context.Context, payload []byte) ([]byte, error)

func (f funcInvoker) Invoke(ctx context.Context, p []byte) ([]byte, error) { return f(ctx, p) }

var _ apigw.Invoker = funcInvoker(nil)

// echo answers with a response built from the event it received, and keeps the event.
func echo(got *events.APIGatewayV2HTTPRequest) funcInvoker {
	return func(_ context.Context, p []byte) ([]byte, error) {
		if err := json.Unmarshal(p, got); err != nil {
			return nil, err
		}
		return json.Marshal(events.APIGatewayV2HTTPResponse{
			StatusCode:      302,
			Headers:         map[string]string{"Location": "https://example.test/next", "Content-Type": "text/html"},
			Cookies:         []string{"a=1; HttpOnly"},
			Body:            base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 'x'}),
			IsBase64Encoded: true,
		})
	}
}

func TestEventAndResponseMapping(t *testing.T) {
	var got events.APIGatewayV2HTTPRequest
	gw := &apigw.Gateway{Function: echo(&got), Routes: []apigw.Route{{Method: "DELETE", Path: "/oauth/callback"}}}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)

	req, _ := http.NewRequest("DELETE", srv.URL+"/oauth/callback?a=1&a=2&b=%20x", strings.NewReader("\xff\xfe binary"))
	req.Header.Set("Authorization", "Basic eDp5")
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.AddCookie(&http.Cookie{Name: "c", Value: "v"})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	checks := []struct{ name, got, want string }{
		{"routeKey", got.RouteKey, "DELETE /oauth/callback"},
		{"version", got.Version, "2.0"},
		{"method", got.RequestContext.HTTP.Method, "DELETE"},
		{"rawPath", got.RawPath, "/oauth/callback"},
		{"rawQueryString", got.RawQueryString, "a=1&a=2&b=%20x"},
		{"query a", got.QueryStringParameters["a"], "1,2"},
		{"query b", got.QueryStringParameters["b"], " x"},
		{"authorization header", got.Headers["authorization"], "Basic eDp5"},
		{"multi header", got.Headers["x-multi"], "one,two"},
		{"cookies", strings.Join(got.Cookies, ";"), "c=v"},
		{"source ip", got.RequestContext.HTTP.SourceIP, "127.0.0.1"},
		{"response location", resp.Header.Get("Location"), "https://example.test/next"},
		{"response cookie", resp.Header.Get("Set-Cookie"), "a=1; HttpOnly"},
		{"response body", string(body), "\xff\x00x"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !got.IsBase64Encoded {
		t.Errorf("binary body: IsBase64Encoded = false, want true")
	}
	if b, _ := base64.StdEncoding.DecodeString(got.Body); string(b) != "\xff\xfe binary" {
		t.Errorf("body = %q, want the request bytes", b)
	}
	if resp.StatusCode != 302 {
		t.Errorf("status = %d, want 302", resp.StatusCode)
	}
	if _, ok := got.Headers["cookie"]; ok {
		t.Errorf("cookie header forwarded in headers; API Gateway moves it to cookies")
	}
}

func TestGatewayErrors(t *testing.T) {
	failing := funcInvoker(func(context.Context, []byte) ([]byte, error) { return nil, errors.New("secret internals") })
	noResponse := funcInvoker(func(context.Context, []byte) ([]byte, error) { return []byte(`"just a string"`), nil })
	badStatus := funcInvoker(func(context.Context, []byte) ([]byte, error) { return []byte(`{"statusCode":1000}`), nil })
	ok := funcInvoker(func(context.Context, []byte) ([]byte, error) { return []byte(`{"statusCode":204}`), nil })
	tests := []struct {
		name   string
		fn     apigw.Invoker
		method string
		path   string
		body   string
		want   int
	}{
		{"unknown route", ok, "GET", "/nope", "", 404},
		{"wrong method", ok, "POST", "/oauth/callback", "", 404},
		{"function error hidden", failing, "GET", "/oauth/callback", "", 500},
		{"not a response object", noResponse, "GET", "/oauth/callback", "", 500},
		{"status out of range", badStatus, "GET", "/oauth/callback", "", 500},
		{"oversized body", ok, "GET", "/oauth/callback", strings.Repeat("x", apigw.MaxBody+1), 413},
		{"ok", ok, "GET", "/oauth/callback", "", 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := &apigw.Gateway{Function: tt.fn, Routes: []apigw.Route{{Method: "GET", Path: "/oauth/callback"}}}
			rec := httptest.NewRecorder()
			gw.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			if rec.Code != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
			}
			if strings.Contains(rec.Body.String(), "secret internals") {
				t.Errorf("gateway leaked the function's error text: %s", rec.Body.String())
			}
		})
	}
}

// TestRoutesToTheirFunctions checks that a route with its own Function is answered by it and
// the others by the Gateway's.
func TestRoutesToTheirFunctions(t *testing.T) {
	answer := func(status int) funcInvoker {
		return func(context.Context, []byte) ([]byte, error) {
			return json.Marshal(events.APIGatewayV2HTTPResponse{StatusCode: status})
		}
	}
	gw := &apigw.Gateway{Function: answer(200), Routes: []apigw.Route{
		{Method: "GET", Path: "/a"},
		{Method: "POST", Path: "/b", Function: answer(202)},
	}}
	for _, tt := range []struct {
		method, path string
		want         int
	}{{"GET", "/a", 200}, {"POST", "/b", 202}, {"GET", "/b", 404}} {
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
		}
	}
}
