// Package apigw plays API Gateway's HTTP API in front of a Lambda function: it turns an HTTP
// request into a payload-format-2.0 event, invokes the function, and writes the function's
// response back, the way API Gateway does. The local stack uses it so a browser (or the
// simulator's uninstall request) can reach the callback function running under the emulator.
package apigw

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Invoker runs the function with a JSON event and returns its JSON result.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// MaxBody is API Gateway's request payload limit (10 MB) scaled down for local use.
const MaxBody = 1 << 20

// Route is one "METHOD /path" the gateway forwards; others answer 404 like API Gateway does.
type Route struct {
	Method string
	Path   string
	// Function answers the route; nil means the Gateway's Function.
	Function Invoker
}

// Gateway is an http.Handler that forwards matching routes to a function.
type Gateway struct {
	// Function answers routes without a Function of their own, and every request when
	// Routes is empty.
	Function Invoker
	// Routes the gateway forwards. Empty forwards everything (a $default route).
	Routes []Route
	// Log receives one line per request; nil discards.
	Log *slog.Logger
	// Now is the clock used for requestContext.time; nil means time.Now.
	Now func() time.Time
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	routeKey, fn, ok := g.match(r)
	if !ok {
		// API Gateway's own answer for an unknown route.
		writeJSON(w, http.StatusNotFound, `{"message":"Not Found"}`)
		return
	}
	ev, err := g.Event(r, routeKey)
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, `{"message":"Request Entity Too Large"}`)
		return
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, `{"message":"Internal Server Error"}`)
		return
	}
	out, err := fn.Invoke(r.Context(), payload)
	if err != nil {
		// API Gateway hides function errors behind a generic 500.
		g.logger().Error("function error", "route", routeKey, "error", err.Error())
		writeJSON(w, http.StatusInternalServerError, `{"message":"Internal Server Error"}`)
		return
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode == 0 {
		g.logger().Error("function returned no response object", "route", routeKey)
		writeJSON(w, http.StatusInternalServerError, `{"message":"Internal Server Error"}`)
		return
	}
	if err := WriteResponse(w, resp); err != nil {
		g.logger().Error("bad function response", "route", routeKey, "error", err.Error())
		writeJSON(w, http.StatusInternalServerError, `{"message":"Internal Server Error"}`)
		return
	}
	g.logger().Info("request", "route", routeKey, "status", resp.StatusCode)
}

// match returns the route key and the function for r.
func (g *Gateway) match(r *http.Request) (string, Invoker, bool) {
	if len(g.Routes) == 0 {
		return "$default", g.Function, g.Function != nil
	}
	for _, rt := range g.Routes {
		if rt.Method == r.Method && rt.Path == r.URL.Path {
			if rt.Function != nil {
				return rt.Method + " " + rt.Path, rt.Function, true
			}
			return rt.Method + " " + rt.Path, g.Function, g.Function != nil
		}
	}
	return "", nil, false
}

func (g *Gateway) logger() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Log
}

// Event builds the payload-format-2.0 event API Gateway would send for r.
func (g *Gateway) Event(r *http.Request, routeKey string) (events.APIGatewayV2HTTPRequest, error) {
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return events.APIGatewayV2HTTPRequest{}, fmt.Errorf("apigw: read body: %w", err)
	}
	if len(body) > MaxBody {
		return events.APIGatewayV2HTTPRequest{}, errors.New("apigw: body too large")
	}
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		if strings.EqualFold(k, "Cookie") {
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	if r.Host != "" {
		headers["host"] = r.Host
	}
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = make(map[string]string, len(q))
		for k, v := range q {
			query[k] = strings.Join(v, ",")
		}
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:   routeKey,
			AccountID:  "000000000000",
			Stage:      "$default",
			RequestID:  rand.Text(),
			APIID:      "local",
			DomainName: r.Host,
			Time:       now().UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:  now().UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev, nil
}

// WriteResponse writes a function's payload-format-2.0 response to w.
func WriteResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) error {
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			return fmt.Errorf("apigw: response body is not base64: %w", err)
		}
		body = b
	}
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return fmt.Errorf("apigw: response status %d out of range", resp.StatusCode)
	}
	keys := make([]string, 0, len(resp.Headers))
	for k := range resp.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w.Header().Set(k, resp.Headers[k])
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	if w.Header().Get("Content-Type") == "" && len(body) > 0 {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(resp.StatusCode)
	_, err := w.Write(body)
	return err
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
