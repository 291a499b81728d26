// Package pdapi is a minimal client for the Pipedrive REST API at {api_domain}/api/v1/… and
// /api/v2/…: Me (users/me, for the install path), Webhooks and CreateWebhook (the app's
// webhooks), and Do, a generic call for any job. Every request goes through one method, do:
// it validates the api_domain before sending a token, limits the body read, and turns every
// non-2xx answer into a *pderrors.Error classified by pderrors.ClassifyAPI.
//
// The api_domain is passed per call, not stored, because Pipedrive may move a company: callers
// pass the latest value from the token answer. It must satisfy pdoauth.APIDomainPolicy (https
// to a host under pipedrive.com; loopback only for tests and the local stack, with
// Client.AllowLoopback or PIPEDRIVE_ALLOW_LOOPBACK=true); an access token is never sent
// anywhere else.
package pdapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

const (
	// DefaultTimeout bounds each request when Client.HTTP is nil.
	DefaultTimeout = 5 * time.Second
	// MaxBodyBytes is the most of a response body that is read; a larger 2xx body is an error.
	MaxBodyBytes = 1 << 20
	// MaxInFlightPerHost is how many calls to one company's api_domain one process may have in
	// flight and still reuse their connections: the default client's transport keeps this many
	// idle connections per host (http.DefaultTransport keeps 2, so most concurrent calls would
	// open a new TLS connection).
	MaxInFlightPerHost = 16
)

// transport is shared by every Client without its own HTTP client: connections are reused
// across calls, jobs and clients of one execution environment.
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = MaxInFlightPerHost
	return t
}()

// Sentinel errors, wrapped inside the *pderrors.Error this package returns for bad answers.
var (
	// ErrStatus: the API answered with a non-2xx status.
	ErrStatus = errors.New("pdapi: unsuccessful status")
	// ErrMalformedResponse: a 2xx answer that is not the expected JSON.
	ErrMalformedResponse = errors.New("pdapi: malformed response")
	// ErrBodyTooLarge: a 2xx answer longer than MaxBodyBytes.
	ErrBodyTooLarge = errors.New("pdapi: response body too large")
	// ErrInvalidRequest: a request this package refuses to send (empty token, a path outside
	// /api/, a body that is not JSON).
	ErrInvalidRequest = errors.New("pdapi: invalid request")
)

// Reasons of the decisions this package makes itself, for requests it refuses to send. Both
// are DeadLetter: sending the same request again cannot succeed.
const (
	// ReasonUntrustedAPIDomain: the api_domain fails pdoauth.ValidateAPIDomain (with Alert:
	// a stored api_domain an access token must not be sent to needs a person).
	ReasonUntrustedAPIDomain pderrors.Reason = "untrusted_api_domain"
	// ReasonInvalidRequest: ErrInvalidRequest.
	ReasonInvalidRequest pderrors.Reason = "invalid_request"
)

// Client calls the Pipedrive REST API. The zero value is ready to use. A Client is safe for
// concurrent use as long as its fields are not changed.
type Client struct {
	// HTTP sends the requests; when nil, a client with DefaultTimeout on a transport shared by
	// the package that keeps MaxInFlightPerHost idle connections per host. Redirects are never
	// followed (see do).
	HTTP *http.Client
	// AllowLoopback accepts a loopback api_domain (pdoauth.APIDomainPolicy), for the
	// simulator; also on when pdoauth.EnvAllowLoopback is "true". Never set in the deployed
	// functions, which send tokens to Pipedrive hosts only.
	AllowLoopback bool
}

// Me is the user the access token acts for, from GET /api/v1/users/me.
type Me struct {
	// ID is the Pipedrive user id.
	ID int64
	// CompanyID is the id of the company the token is bound to.
	CompanyID int64
	// Name and Email describe the user.
	Name, Email string
	// CompanyName is the company's display name; CompanyDomain its subdomain ("acme").
	CompanyName, CompanyDomain string
}

// Me returns the user accessToken belongs to. A non-2xx answer is a *pderrors.Error (401:
// RefreshAndRetry; 403 scope mismatch: DeadLetter …); a 2xx without a user id or company id is
// ErrMalformedResponse.
func (c *Client) Me(ctx context.Context, apiDomain, accessToken string) (Me, error) {
	const op = "GET /api/v1/users/me"
	resp, err := c.do(ctx, http.MethodGet, apiDomain, "/api/v1/users/me", accessToken, nil)
	if err != nil {
		return Me{}, err
	}
	if resp.Truncated {
		return Me{}, malformed(op, resp.Status, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, MaxBodyBytes))
	}
	var env struct {
		Data *struct {
			ID            flexInt `json:"id"`
			CompanyID     flexInt `json:"company_id"`
			Name          string  `json:"name"`
			Email         string  `json:"email"`
			CompanyName   string  `json:"company_name"`
			CompanyDomain string  `json:"company_domain"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &env); err != nil {
		return Me{}, malformed(op, resp.Status, fmt.Errorf("%w: %s", ErrMalformedResponse, jsonProblem(err)))
	}
	if env.Data == nil || env.Data.ID <= 0 || env.Data.CompanyID <= 0 {
		return Me{}, malformed(op, resp.Status, fmt.Errorf("%w: no user id or company_id", ErrMalformedResponse))
	}
	d := env.Data
	return Me{
		ID: int64(d.ID), CompanyID: int64(d.CompanyID),
		Name: d.Name, Email: d.Email, CompanyName: d.CompanyName, CompanyDomain: d.CompanyDomain,
	}, nil
}

// Response is one answer of the API, as Do returns it.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the response headers (x-ratelimit-*, Retry-After, …).
	Header http.Header
	// Body is the response body, at most MaxBodyBytes of it.
	Body []byte
	// Truncated reports that the body was longer than MaxBodyBytes and Body holds only its
	// first MaxBodyBytes.
	Truncated bool
}

// Do sends method path to apiDomain with the bearer token and, when body is not nil, body as
// the JSON request body (it must be valid JSON). path must start with "/api/"; it may carry a
// query string.
//
// A 2xx answer returns the Response and a nil error, also when its body was cut at
// MaxBodyBytes (Response.Truncated): Pipedrive has done the work, and retrying would do it
// twice. Any other answer returns the Response (status, headers and the start of the body)
// together with a *pderrors.Error whose Decision comes from pderrors.ClassifyAPI and which
// wraps ErrStatus. A transport failure returns a zero Response and an error pderrors.DecisionOf
// classifies (timeouts and network failures: Retry). Errors never contain the token or a body.
func (c *Client) Do(ctx context.Context, method, apiDomain, path, accessToken string, body []byte) (Response, error) {
	op := method + " " + route(path)
	if !strings.HasPrefix(path, "/api/") {
		return Response{}, refused(op, ReasonInvalidRequest, false, fmt.Errorf("%w: path must start with /api/", ErrInvalidRequest))
	}
	if body != nil && !json.Valid(body) {
		return Response{}, refused(op, ReasonInvalidRequest, false, fmt.Errorf("%w: request body is not valid JSON", ErrInvalidRequest))
	}
	return c.do(ctx, method, apiDomain, path, accessToken, body)
}

// do sends one request to apiDomain+path with the bearer token and, when body is not nil, the
// JSON body. It reads the answer's body up to MaxBodyBytes. A non-2xx answer is returned with
// a *pderrors.Error from ClassifyAPI wrapping ErrStatus. Transport failures are wrapped with %w
// so pderrors.DecisionOf can classify them. Redirects are returned as answers, not followed
// (and so classified as unexpected): a token must not travel on.
func (c *Client) do(ctx context.Context, method, apiDomain, path, token string, body []byte) (Response, error) {
	// Op names the route, never a query string (it may carry ids or filters).
	op := method + " " + route(path)
	policy := pdoauth.APIDomainPolicy{AllowLoopback: c.AllowLoopback || pdoauth.LoopbackAllowedByEnv()}
	base, err := policy.Validate(apiDomain)
	if err != nil {
		// Retrying cannot make a stored api_domain trustworthy; a person must look.
		return Response{}, refused(op, ReasonUntrustedAPIDomain, true, err)
	}
	if token == "" {
		return Response{}, refused(op, ReasonInvalidRequest, false, fmt.Errorf("%w: empty access token", ErrInvalidRequest))
	}
	var reqBody io.Reader
	if body != nil {
		reqBody = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, reqBody)
	if err != nil {
		return Response{}, fmt.Errorf("pdapi: %s: build request: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		// A *url.Error prints the whole URL, query string included: keep only its cause, which
		// is what pderrors.DecisionOf classifies.
		var ue *url.Error
		if errors.As(err, &ue) && ue.Err != nil {
			err = ue.Err
		}
		return Response{}, fmt.Errorf("pdapi: %s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return Response{}, fmt.Errorf("pdapi: %s: read response (http %d): %w", op, resp.StatusCode, err)
	}
	out := Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	if len(data) > MaxBodyBytes {
		// A truncated error body still classifies by its status.
		out.Body, out.Truncated = data[:MaxBodyBytes], true
	}
	d := pderrors.ClassifyAPI(resp.StatusCode, resp.Header, out.Body)
	if d.Action != pderrors.Succeed {
		return out, &pderrors.Error{Op: op, Decision: d, Err: fmt.Errorf("%w (http %d)", ErrStatus, resp.StatusCode)}
	}
	return out, nil
}

// route is path without its query string.
func route(path string) string {
	r, _, _ := strings.Cut(path, "?")
	return r
}

// refused is the error for a request this package will not send: DeadLetter, since sending it
// again cannot succeed. The message is err's text, which never holds a token or body.
func refused(op string, reason pderrors.Reason, alert bool, err error) error {
	return &pderrors.Error{Op: "pdapi: " + op, Err: err, Decision: pderrors.Decision{
		Action: pderrors.DeadLetter, Alert: alert, Reason: reason, Message: err.Error(),
	}}
}

// malformed is the error for a 2xx answer we cannot use. Retry with Alert: a proxy page or a
// truncated answer may pass, and a person should know if it does not.
func malformed(op string, status int, err error) error {
	return &pderrors.Error{Op: op, Err: err, Decision: pderrors.Decision{
		Action: pderrors.Retry, Alert: true, Reason: pderrors.ReasonUnexpected, Status: status, Message: err.Error(),
	}}
}

func (c *Client) httpClient() *http.Client {
	hc := http.Client{Timeout: DefaultTimeout, Transport: transport}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

// flexInt decodes an id given as a JSON number or a numeric string.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Some numbers arrive as 5206648.0.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return fmt.Errorf("not an integer id")
		}
		v = int64(f)
	}
	*n = flexInt(v)
	return nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at offset %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has JSON type %s", typ.Field, typ.Value)
	default:
		return "unexpected JSON shape"
	}
}
