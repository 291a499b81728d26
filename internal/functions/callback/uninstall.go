package callback

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/httpapi"

	"github.com/pdkit/pipedrive-lambda-kit/internal/uninstall"
)

// uninstall answers Pipedrive's DELETE /oauth/callback: the uninstall use case decides, this
// maps its Result to the JSON answer (Pipedrive ignores it; the log and alerts carry the rest).
func (h *handler) uninstall(ctx context.Context, req events.APIGatewayV2HTTPRequest, o outcome) (events.APIGatewayV2HTTPResponse, outcome) {
	r := h.Uninstall.Uninstall(ctx, uninstall.Request{Authorization: httpapi.Header(req.Headers, "Authorization"), Body: req.Body, Base64: req.IsBase64Encoded})
	o.reason, o.id, o.err = r.Outcome.String(), r.ID, r.Err
	switch r.Outcome {
	case uninstall.Uninstalled, uninstall.Unknown:
		o.action = "uninstall"
		return jsonResponse(http.StatusOK, `{"success":true}`), o
	case uninstall.Predates:
		o.action = "ignore" // acknowledged, so a replay learns nothing
		return jsonResponse(http.StatusOK, `{"success":true}`), o
	case uninstall.Unauthorized:
		o.action = "reject"
		return withHeader(jsonResponse(http.StatusUnauthorized, `{"success":false,"error":"unauthorized"}`), "WWW-Authenticate", `Basic realm="uninstall"`), o
	case uninstall.TooLarge:
		o.action = "reject"
		return jsonResponse(http.StatusRequestEntityTooLarge, `{"success":false,"error":"request body too large"}`), o
	case uninstall.Malformed:
		o.action = "reject"
		if !errors.Is(r.Err, uninstall.ErrMalformed) {
			return jsonResponse(http.StatusBadRequest, `{"success":false,"error":"body is not valid base64"}`), o
		}
		return jsonResponse(http.StatusBadRequest, `{"success":false,"error":"malformed uninstall request"}`), o
	case uninstall.ClientIDMismatch:
		o.action = "reject"
		return jsonResponse(http.StatusBadRequest, `{"success":false,"error":"client_id does not match"}`), o
	case uninstall.NotConfigured:
		return h.notConfigured(o, r.Err, true)
	}
	// CredentialsUnavailable, StoreFailed: a person was alerted (pdctl uninstall finishes it).
	o.action = "error"
	return jsonResponse(http.StatusInternalServerError, `{"success":false,"error":"internal error"}`), o
}
