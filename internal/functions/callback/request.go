package callback

import (
	"errors"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/oauthstate"
)

// requestPath is the request path without a named stage's prefix ("/prod/oauth/callback").
func requestPath(req events.APIGatewayV2HTTPRequest) string {
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

// stateReason names a state verification failure for the log.
func stateReason(err error) string {
	switch {
	case errors.Is(err, oauthstate.ErrStateExpired):
		return "state_expired"
	case errors.Is(err, oauthstate.ErrStateForged):
		return "state_forged"
	case errors.Is(err, oauthstate.ErrStateUnbound):
		return "state_unbound"
	}
	return "state_malformed"
}

// query parses the request's query, from rawQueryString when present (it keeps repeated keys
// apart), else from queryStringParameters.
func query(req events.APIGatewayV2HTTPRequest) (url.Values, bool) {
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

func queryParamsBytes(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v) + 2
	}
	return n
}

// header returns the value of header name, matched case-insensitively (HTTP API lower-cases
// header names, literal test events may not).
func header(h map[string]string, name string) string {
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

// cookieValue returns the value of the cookie called name: from the payload's cookies list
// (HTTP API 2.0 moves the Cookie header there) or, for literal events, the Cookie header. It
// is "" when absent or present more than once (a planted duplicate must not choose).
func cookieValue(req events.APIGatewayV2HTTPRequest, name string) string {
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
		for _, pair := range strings.Split(header(req.Headers, "Cookie"), ";") {
			add(pair)
		}
	}
	if len(found) != 1 {
		return ""
	}
	return found[0]
}
