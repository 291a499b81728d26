package pdkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
)

// Client acts for one installation: it calls the Pipedrive API with the installation's tokens
// (through the worker's Session: see the package documentation for what each call gets) and
// queues the app's jobs for it. A handler gets one per run. Not safe for concurrent use: make
// a run's calls one after another.
type Client struct {
	c *pdwork.Client
}

// Response is a 2xx answer of Pipedrive.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the answer's headers (x-ratelimit-*, …).
	Header http.Header
	// Body is the answer's body (at most 10 MiB of it).
	Body []byte
}

// Decode unmarshals the body's JSON into v.
func (r *Response) Decode(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("pdkit: decode Pipedrive's answer: %w", err)
	}
	return nil
}

// CallOption changes how one call is made.
type CallOption func(*callOptions)

type callOptions struct{ retrySafe bool }

// RetrySafe marks a POST that may be sent again when its outcome is unknown (a timeout, a lost
// answer, a 5xx other than 503): one Pipedrive de-duplicates, or one the handler looked for
// before making (as the worked example does). Without it such a POST ends the run as
// outcome_unknown (dead-lettered, an alert) instead of being retried, since it may have created
// something. Other methods are retried regardless.
func RetrySafe() CallOption { return func(o *callOptions) { o.retrySafe = true } }

// Installation is the installation the client acts for.
func (c *Client) Installation() Installation { return installationOf(c.c.Installation()) }

// Do calls method path (relative to the installation's API domain and starting with /api/,
// e.g. "/api/v1/notes?deal_id=7") with body: nil for none, a []byte or json.RawMessage holding
// JSON, or any other value, which is encoded as JSON. It returns the 2xx answer, or an error to
// return from the handler (wrapped with %w): the kit then retries at Pipedrive's time or
// dead-letters with the reason. errors.As with *pderrors.Error (package pkg/pderrors) gives
// Pipedrive's status and classification.
func (c *Client) Do(ctx context.Context, method, path string, body any, opts ...CallOption) (*Response, error) {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	raw, err := encodeBody(body)
	if err != nil {
		return nil, err
	}
	resp, err := c.c.Do(ctx, method, path, raw, o.retrySafe)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.Status, Header: resp.Header, Body: resp.Body}, nil
}

// Get is Do with GET and no body.
func (c *Client) Get(ctx context.Context, path string) (*Response, error) {
	return c.Do(ctx, http.MethodGet, path, nil)
}

// Post is Do with POST.
func (c *Client) Post(ctx context.Context, path string, body any, opts ...CallOption) (*Response, error) {
	return c.Do(ctx, http.MethodPost, path, body, opts...)
}

// maxJobKey bounds Job.Key: the job's id adds the kind and the installation to it.
const maxJobKey = 64

// Enqueue queues j for the client's installation: the worker runs App.Jobs[j.Kind] with it,
// once per Kind and Key. The error says what is wrong with j, or that the queue refused it.
func (c *Client) Enqueue(ctx context.Context, j Job) error {
	if j.Key == "" || len(j.Key) > maxJobKey {
		return fmt.Errorf("pdkit: job %s: key must be 1 to %d bytes", j.Kind, maxJobKey)
	}
	if !jobs.ValidAppKindName(j.Kind) {
		return fmt.Errorf("pdkit: job kind %q is not a name App.Jobs can hold", j.Kind)
	}
	q := jobs.AppJob(j.Kind, c.c.Installation(), j.Key, j.Payload)
	q.NotBefore = j.NotBefore
	if err := c.c.Enqueue(ctx, q); err != nil {
		if errors.Is(err, jobs.ErrInvalidJob) {
			return fmt.Errorf("pdkit: job %s %q: %w (is %q a key of App.Jobs?)", j.Kind, j.Key, err, j.Kind)
		}
		return fmt.Errorf("pdkit: queue job %s %q: %w", j.Kind, j.Key, err)
	}
	return nil
}

func encodeBody(body any) ([]byte, error) {
	switch b := body.(type) {
	case nil:
		return nil, nil
	case []byte:
		return b, nil
	case json.RawMessage:
		return b, nil
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("pdkit: encode request body: %w", err)
	}
	return raw, nil
}
