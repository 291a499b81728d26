package httpapi_test

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/httpapi"
)

func TestPath(t *testing.T) {
	for _, tt := range []struct{ raw, httpPath, stage, want string }{
		{"/oauth/callback", "", "$default", "/oauth/callback"},
		{"/prod/oauth/callback", "", "prod", "/oauth/callback"},
		{"/oauth/callback/", "", "", "/oauth/callback"},
		{"", "/oauth/install", "", "/oauth/install"},
		{"/", "", "", "/"},
	} {
		req := events.APIGatewayV2HTTPRequest{RawPath: tt.raw}
		req.RequestContext.HTTP.Path, req.RequestContext.Stage = tt.httpPath, tt.stage
		if got := httpapi.Path(req); got != tt.want {
			t.Errorf("Path(%q, stage %q) = %q, want %q", tt.raw, tt.stage, got, tt.want)
		}
	}
}

func TestBaseURL(t *testing.T) {
	for _, tt := range []struct {
		domain, stage, want string
		ok                  bool
	}{
		{"abc.execute-api.eu-central-1.amazonaws.com", "$default", "https://abc.execute-api.eu-central-1.amazonaws.com", true},
		{"abc.execute-api.eu-central-1.amazonaws.com", "prod", "https://abc.execute-api.eu-central-1.amazonaws.com/prod", true},
		{"app.example.com", "", "https://app.example.com", true},
		{"", "", "", false},
		{"evil.example/x?", "", "", false},
		{"user@evil.example", "", "", false},
	} {
		req := events.APIGatewayV2HTTPRequest{}
		req.RequestContext.DomainName, req.RequestContext.Stage = tt.domain, tt.stage
		if got, ok := httpapi.BaseURL(req); got != tt.want || ok != tt.ok {
			t.Errorf("BaseURL(%q, %q) = %q, %t; want %q, %t", tt.domain, tt.stage, got, ok, tt.want, tt.ok)
		}
	}
}

func TestQuery(t *testing.T) {
	q, ok := httpapi.Query(events.APIGatewayV2HTTPRequest{RawQueryString: "code=a&code=b&state=s"})
	if !ok || len(q["code"]) != 2 || q.Get("state") != "s" {
		t.Errorf("Query(raw) = %v, %t; want both codes kept apart", q, ok)
	}
	if _, ok := httpapi.Query(events.APIGatewayV2HTTPRequest{RawQueryString: "a=%zz"}); ok {
		t.Errorf("Query(malformed) ok, want not ok")
	}
	q, ok = httpapi.Query(events.APIGatewayV2HTTPRequest{QueryStringParameters: map[string]string{"code": "c"}})
	if !ok || q.Get("code") != "c" {
		t.Errorf("Query(params) = %v, %t", q, ok)
	}
	if n := httpapi.QueryParamsBytes(map[string]string{"ab": "cd"}); n != 6 {
		t.Errorf("QueryParamsBytes = %d, want 6", n)
	}
}

func TestHeaderAndCookie(t *testing.T) {
	h := map[string]string{"authorization": "Basic x", "X-Mixed": "y"}
	if httpapi.Header(h, "Authorization") != "Basic x" || httpapi.Header(h, "x-mixed") != "y" || httpapi.Header(h, "none") != "" {
		t.Errorf("Header: case-insensitive lookup failed on %v", h)
	}
	for _, tt := range []struct {
		cookies []string
		header  string
		want    string
	}{
		{[]string{"a=1", "__Host-s=v"}, "", "v"},
		{[]string{"__Host-s=v; b=2"}, "", "v"},
		{nil, "b=2; __Host-s=w", "w"},
		{[]string{"__Host-s=v", "__Host-s=planted"}, "", ""}, // a duplicate must not choose
		{[]string{"b=2"}, "__Host-s=ignored", ""},            // the list wins over the header
		{nil, "", ""},
	} {
		req := events.APIGatewayV2HTTPRequest{Cookies: tt.cookies, Headers: map[string]string{"cookie": tt.header}}
		if got := httpapi.Cookie(req, "__Host-s"); got != tt.want {
			t.Errorf("Cookie(%q, header %q) = %q, want %q", tt.cookies, tt.header, got, tt.want)
		}
	}
}
