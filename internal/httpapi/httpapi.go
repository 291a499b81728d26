// Package httpapi reads API Gateway HTTP API requests (payload format 2.0, as
// events.APIGatewayV2HTTPRequest): the path without a named stage, the query, headers matched
// case-insensitively and cookies, the same whether the event came from API Gateway (lower-case
// headers, a cookies list) or is a literal test event.
package httpapi

import (
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Path is the request path without a named stage's prefix ("/prod/oauth/callback").
func Path(req events.APIGatewayV2HTTPRequest) string {
	p := req.RawPath
	if p == "" {
		p = req.RequestContext.HTTP.Path
	}
	if st := req.RequestContext.Stage; st != "" && st != "$default" {
		p = strings.TrimPrefix(p, "/"+st)
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

// BaseURL is the https URL the request's API is served at: the domain API Gateway received it
// on (requestContext.domainName: the API's own execute-api domain or a custom domain, never a
// client's Host header) and the named stage, if any, as a path prefix. ok is false without a
// domain, or with one that is not a bare host name.
func BaseURL(req events.APIGatewayV2HTTPRequest) (string, bool) {
	d := req.RequestContext.DomainName
	if d == "" || strings.ContainsAny(d, "/\\?#@ ") {
		return "", false
	}
	prefix := ""
	if st := req.RequestContext.Stage; st != "" && st != "$default" {
		prefix = "/" + st // a named stage is part of the URL (Path strips it)
	}
	return "https://" + d + prefix, true
}

// Query parses the request's query, from rawQueryString when present (it keeps repeated keys
// apart), else from queryStringParameters.
func Query(req events.APIGatewayV2HTTPRequest) (url.Values, bool) {
	if req.RawQueryString != "" {
		q, err := url.ParseQuery(req.RawQueryString)
		return q, err == nil
	}
	q := url.Values{}
	for k, v := range req.QueryStringParameters {
		q.Set(k, v)
	}
	return q, true
}

// QueryParamsBytes is the size of the parsed query parameters, for a cap on them.
func QueryParamsBytes(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v) + 2
	}
	return n
}

// Header returns the value of header name, matched case-insensitively (HTTP API lower-cases
// header names, literal test events may not).
func Header(h map[string]string, name string) string {
	if v, ok := h[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Cookie returns the value of the cookie called name: from the payload's cookies list
// (HTTP API 2.0 moves the Cookie header there) or, for literal events, the Cookie header. It
// is "" when absent or present more than once (a planted duplicate must not choose).
func Cookie(req events.APIGatewayV2HTTPRequest, name string) string {
	var found []string
	add := func(pair string) {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && k == name {
			found = append(found, v)
		}
	}
	for _, c := range req.Cookies {
		for _, pair := range strings.Split(c, ";") {
			add(pair)
		}
	}
	if len(req.Cookies) == 0 {
		for _, pair := range strings.Split(Header(req.Headers, "Cookie"), ";") {
			add(pair)
		}
	}
	if len(found) != 1 {
		return ""
	}
	return found[0]
}
