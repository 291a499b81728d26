package pdsim

import (
	"bytes"
	"encoding/json"
	"html"
	"net/http"
	"strings"
)

// marshal is v as JSON the way Pipedrive writes it: <, > and & as they are (JSON.stringify
// does not escape them; Go's json.Marshal would write \u003c), so an HTML-heavy note or email
// arrives at a receiver at its real size.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		// Only our own types reach here; a failure is a simulator bug.
		http.Error(w, "pdsim: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// oauthErrorBody is Pipedrive's OAuth error shape.
type oauthErrorBody struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

// apiErrorBody is Pipedrive's API error shape.
type apiErrorBody struct {
	Success        bool   `json:"success"`
	Error          string `json:"error"`
	Code           string `json:"code,omitempty"`
	ErrorCode      int    `json:"errorCode,omitempty"`
	ErrorInfo      string `json:"error_info"`
	Data           any    `json:"data"`
	AdditionalData any    `json:"additional_data"`
}

// writeAPIError writes Pipedrive's API error body.
func writeAPIError(w http.ResponseWriter, status int, msg string) {
	body := apiErrorBody{Error: msg, ErrorInfo: ErrorInfo}
	if status == http.StatusForbidden {
		// Seen on real 403 answers; clients must tolerate it.
		body.ErrorCode = status
	}
	writeJSON(w, status, body)
}

// writeInputError answers invalid input of an API call: v1's error body, or for v2 the same
// shape with code ERR_SCHEMA_VALIDATION_FAILED.
func writeInputError(w http.ResponseWriter, v apiVersion, msg string) {
	body := apiErrorBody{Error: msg, ErrorInfo: ErrorInfo}
	if v == v2 {
		body.Code = CodeSchemaValidation
	}
	writeJSON(w, http.StatusBadRequest, body)
}

// apiErrorJSON is the API error body for msg, as bytes.
func apiErrorJSON(msg string) []byte {
	b, _ := json.Marshal(apiErrorBody{Error: msg, ErrorInfo: ErrorInfo})
	return b
}

// oauthErrorJSON is the OAuth error body for msg, as bytes.
func oauthErrorJSON(msg, code string) []byte {
	b, _ := json.Marshal(oauthErrorBody{Message: msg, Error: code})
	return b
}

// wantsJSON reports whether the client prefers JSON to a page (for /oauth/authorize, which a
// browser normally visits).
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// writePage answers a browser-facing request with a small HTML page holding msg, or with the
// OAuth JSON error shape when the client asked for JSON.
func writePage(w http.ResponseWriter, r *http.Request, status int, msg, code string) {
	if wantsJSON(r) {
		writeJSON(w, status, oauthErrorBody{Message: msg, Error: code})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte("<!DOCTYPE html>\n<html><head><title>Pipedrive</title></head><body><p>" +
		html.EscapeString(msg) + "</p></body></html>\n"))
}
