package pdapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// Webhook is one webhook as GET and POST /api/v1/webhooks describe it. The HTTP Basic
// password Pipedrive echoes back is deliberately not kept.
type Webhook struct {
	// ID is Pipedrive's webhook id.
	ID int64
	// EventObject ("deal", "person", "*", …) and EventAction ("create", "change", "delete",
	// "*", or the v1-era "added", "updated", "deleted", "merged") say what fires it.
	EventObject, EventAction string
	// SubscriptionURL is where Pipedrive delivers the events.
	SubscriptionURL string
	// Name and Version ("1.0" or "2.0") as Pipedrive stores them.
	Name, Version string
	// UserID is the user the webhook is authorized with.
	UserID int64
	// HTTPAuthUser is the HTTP Basic user Pipedrive delivers with; "" when the webhook has
	// none or the answer does not show it (null or absent).
	HTTPAuthUser string
	// Inactive is is_active shown as 0 or false; a webhook whose answer has no is_active is
	// active.
	Inactive bool
	// Banned is is_subscription_ban shown true: Pipedrive drops its deliveries for now (30
	// minutes after 10 failed deliveries), and what happens meanwhile is never delivered.
	Banned bool
}

// NewWebhook is what CreateWebhook sends. SubscriptionURL, EventObject, EventAction and Name
// are required by Pipedrive; the others are optional. Formatting with fmt or logging with slog
// never shows HTTPAuthPassword.
type NewWebhook struct {
	SubscriptionURL string
	EventObject     string
	EventAction     string
	Name            string
	// HTTPAuthUser and HTTPAuthPassword make Pipedrive deliver with HTTP Basic.
	HTTPAuthUser     string
	HTTPAuthPassword string
	// Version is "1.0" or "2.0"; empty leaves Pipedrive's default (2.0).
	Version string
	// UserID authorizes the webhook as another user; 0 leaves the token's user.
	UserID int64
}

// String describes the webhook without its password.
func (w NewWebhook) String() string {
	return fmt.Sprintf("webhook %s.%s -> %s (basic auth %t)", w.EventObject, w.EventAction, w.SubscriptionURL, w.HTTPAuthUser != "")
}

// GoString is what %#v prints: the same redacted description.
func (w NewWebhook) GoString() string { return w.String() }

// LogValue implements slog.LogValuer without the password.
func (w NewWebhook) LogValue() slog.Value {
	return slog.GroupValue(slog.String("event_object", w.EventObject), slog.String("event_action", w.EventAction),
		slog.String("subscription_url", w.SubscriptionURL), slog.Bool("basic_auth", w.HTTPAuthUser != ""))
}

// webhookJSON is a webhook in Pipedrive's answers.
type webhookJSON struct {
	ID              flexInt `json:"id"`
	EventObject     string  `json:"event_object"`
	EventAction     string  `json:"event_action"`
	SubscriptionURL string  `json:"subscription_url"`
	Name            string  `json:"name"`
	Version         string  `json:"version"`
	UserID          flexInt `json:"user_id"`
	HTTPAuthUser    string  `json:"http_auth_user"`
	IsActive        *flag   `json:"is_active"`
	Ban             *flag   `json:"is_subscription_ban"`
}

// flag decodes a JSON boolean given as true/false, 1/0 or "1"/"0"; null is false.
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(b), `"`) {
	case "true", "1":
		*f = true
	case "false", "0", "null", "":
		*f = false
	default:
		return fmt.Errorf("not a boolean")
	}
	return nil
}

func (w webhookJSON) webhook() Webhook {
	return Webhook{ID: int64(w.ID), EventObject: w.EventObject, EventAction: w.EventAction,
		SubscriptionURL: w.SubscriptionURL, Name: w.Name, Version: w.Version, UserID: int64(w.UserID),
		HTTPAuthUser: w.HTTPAuthUser, Inactive: w.IsActive != nil && !bool(*w.IsActive), Banned: w.Ban != nil && bool(*w.Ban)}
}

// Webhooks lists the webhooks of the token's user for this app (GET /api/v1/webhooks). Errors
// are those of Do; a 2xx whose data is not a list of webhooks with ids is ErrMalformedResponse
// (Retry with Alert).
func (c *Client) Webhooks(ctx context.Context, apiDomain, accessToken string) ([]Webhook, error) {
	const op = "GET /api/v1/webhooks"
	resp, err := c.do(ctx, http.MethodGet, apiDomain, "/api/v1/webhooks", accessToken, nil)
	if err != nil {
		return nil, err
	}
	if resp.Truncated {
		return nil, malformed(op, resp.Status, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, MaxBodyBytes))
	}
	var env struct {
		Data []webhookJSON `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &env); err != nil {
		return nil, malformed(op, resp.Status, fmt.Errorf("%w: %s", ErrMalformedResponse, jsonProblem(err)))
	}
	out := make([]Webhook, 0, len(env.Data))
	for _, w := range env.Data {
		if w.ID <= 0 {
			return nil, malformed(op, resp.Status, fmt.Errorf("%w: a webhook without id", ErrMalformedResponse))
		}
		out = append(out, w.webhook())
	}
	return out, nil
}

// CreateWebhook creates a webhook (POST /api/v1/webhooks) and returns it as Pipedrive stored
// it. Errors are those of Do: 400 for invalid fields (DeadLetter), 422 "Webhooks limit reached"
// at the 41st webhook of a user (DeadLetter with Alert), 403 without the admin or
// webhooks:full scope. A 2xx without a webhook id is ErrMalformedResponse (Retry with Alert):
// the webhook may exist, so list before creating again.
func (c *Client) CreateWebhook(ctx context.Context, apiDomain, accessToken string, w NewWebhook) (Webhook, error) {
	const op = "POST /api/v1/webhooks"
	in := map[string]any{
		"subscription_url": w.SubscriptionURL,
		"event_object":     w.EventObject,
		"event_action":     w.EventAction,
		"name":             w.Name,
	}
	if w.HTTPAuthUser != "" || w.HTTPAuthPassword != "" {
		in["http_auth_user"], in["http_auth_password"] = w.HTTPAuthUser, w.HTTPAuthPassword
	}
	if w.Version != "" {
		in["version"] = w.Version
	}
	if w.UserID != 0 {
		in["user_id"] = w.UserID
	}
	body, err := json.Marshal(in)
	if err != nil {
		return Webhook{}, fmt.Errorf("pdapi: %s: encode body: %w", op, err)
	}
	resp, err := c.do(ctx, http.MethodPost, apiDomain, "/api/v1/webhooks", accessToken, body)
	if err != nil {
		return Webhook{}, err
	}
	var env struct {
		Data *webhookJSON `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &env); err != nil {
		return Webhook{}, malformed(op, resp.Status, fmt.Errorf("%w: %s", ErrMalformedResponse, jsonProblem(err)))
	}
	if env.Data == nil || env.Data.ID <= 0 {
		return Webhook{}, malformed(op, resp.Status, fmt.Errorf("%w: no webhook id", ErrMalformedResponse))
	}
	return env.Data.webhook(), nil
}

// DeleteWebhook deletes the webhook id (DELETE /api/v1/webhooks/{id}); Pipedrive stops
// delivering to it. Any 2xx is success (the body is not needed). Errors are those of Do: 404
// when no webhook id exists for the token's user (pderrors.ReasonNotFound: the caller decides
// whether "already gone" is success), 401, 403 without the admin or webhooks:full scope, 429
// and 5xx as for every call. An id that is not positive is refused without a request
// (DeadLetter, ReasonInvalidRequest).
func (c *Client) DeleteWebhook(ctx context.Context, apiDomain, accessToken string, id int64) error {
	const op = "DELETE /api/v1/webhooks/{id}"
	if id <= 0 {
		return refused(op, ReasonInvalidRequest, false, fmt.Errorf("%w: webhook id %d is not positive", ErrInvalidRequest, id))
	}
	_, err := c.do(ctx, http.MethodDelete, apiDomain, "/api/v1/webhooks/"+strconv.FormatInt(id, 10), accessToken, nil)
	return err
}

// IsNotFound reports whether err is Pipedrive's 404 answer (pderrors.ReasonNotFound), as
// DeleteWebhook returns for a webhook that is already gone.
func IsNotFound(err error) bool {
	if !errors.Is(err, ErrStatus) {
		return false
	}
	d := pderrors.DecisionOf(err)
	return d.Status == http.StatusNotFound && d.Reason == pderrors.ReasonNotFound
}
