package pderrors_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// hdr builds a header from key, value pairs, canonicalising keys as a real response does.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// jsonBody marshals v, failing the process on error (only literal values are passed).
func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// oauthMsg is Pipedrive's OAuth error body without the "error" key.
func oauthMsg(msg string) string {
	return jsonBody(map[string]any{"success": false, "message": msg})
}

// oauthErr is Pipedrive's OAuth error body with an "error" code.
func oauthErr(msg, code string) string {
	return jsonBody(map[string]any{"success": false, "message": msg, "error": code})
}

// apiErr is Pipedrive's REST API error body.
func apiErr(msg string) string {
	return `{"success":false,"error":` + jsonBody(msg) +
		`,"error_info":"Please check developers.pipedrive.com","data":null,"additional_data":null}`
}

// apiErrCode is Pipedrive's REST API error body with a machine "code" (v2, plan limits).
func apiErrCode(msg, code string) string {
	return `{"success":false,"error":` + jsonBody(msg) + `,"code":` + jsonBody(code) +
		`,"error_info":"Please check developers.pipedrive.com","data":null,"additional_data":null}`
}

// gatewayUnauthorized is the live API gateway's answer to a bad or missing token.
const gatewayUnauthorized = `{"success":false,"error":"unauthorized access","errorCode":401,"error_info":"Please check developers.pipedrive.com","data":null,"additional_data":null}`

// cloudflareBlock is the shape of Cloudflare's block page.
const cloudflareBlock = `<!DOCTYPE html>
<html lang="en-US"><head><title>Attention Required! | Cloudflare</title></head>
<body><h1>Sorry, you have been blocked</h1><h2>You are unable to access pipedrive.com</h2>
<p>This website is using a security service to protect itself from online attacks.</p></body></html>`

// maintenancePage is the /oauth/authorize page for a company database under maintenance.
const maintenancePage = `<html><head><title>Pipedrive</title></head><body>
<h1>Whoops! Something broke in our servers and we cannot serve you this page.</h1></body></html>`

// tokenJSON is a successful token response.
const tokenJSON = `{"access_token":"v1u:AQIBAHj+LzTNK2yuuuaLqifzhWb9crUNKTpk4FlQ9rjnXqp4Ijzjx","token_type":"Bearer",` +
	`"expires_in":3599,"refresh_token":"1:1:b4f3c1e0d2a94a3e8f6c","scope":"base,deals:full","api_domain":"https://acme.pipedrive.com"}`

// Dates for Retry-After HTTP-date rows.
const (
	respDate   = "Wed, 26 Nov 2025 10:00:00 GMT"
	date90s    = "Wed, 26 Nov 2025 10:01:30 GMT"
	datePast   = "Wed, 26 Nov 2025 09:59:00 GMT"
	date90sRFC = "Wednesday, 26-Nov-25 10:01:30 GMT"
)

// classifyCase is one response and the Decision expected for it.
type classifyCase struct {
	name   string
	status int
	header http.Header
	body   string
	want   pderrors.Decision // Status is filled from status
}

// checkDecision compares a Decision field by field.
func checkDecision(t *testing.T, fn string, c classifyCase, got pderrors.Decision) {
	t.Helper()
	want := c.want
	want.Status = c.status
	if got != want {
		t.Errorf("%s(%d, %v, %q) =\n\t%+v, want\n\t%+v", fn, c.status, c.header, c.body, got, want)
	}
}

// checkInvariants asserts what holds for every classification, whatever the input.
func checkInvariants(t *testing.T, fn string, status int, d pderrors.Decision) {
	t.Helper()
	if !d.Action.Valid() {
		t.Errorf("%s(%d).Action = %v, want a valid action", fn, status, d.Action)
	}
	if d.RetryAfter < 0 || d.RetryAfter > pderrors.MaxRetryAfter {
		t.Errorf("%s(%d).RetryAfter = %v, want within [0, %v]", fn, status, d.RetryAfter, pderrors.MaxRetryAfter)
	}
	if d.Action != pderrors.Retry && d.Action != pderrors.Pause && d.RetryAfter != 0 {
		t.Errorf("%s(%d).RetryAfter = %v with action %v, want 0", fn, status, d.RetryAfter, d.Action)
	}
	if d.Status != status {
		t.Errorf("%s(%d).Status = %d, want %d", fn, status, d.Status, status)
	}
	if d.Reason == "" {
		t.Errorf("%s(%d).Reason = \"\", want a reason", fn, status)
	}
	if n := utf8.RuneCountInString(d.Message); n > 200 || !utf8.ValidString(d.Message) {
		t.Errorf("%s(%d).Message = %q (%d runes), want valid UTF-8 of at most 200 runes", fn, status, d.Message, n)
	}
	for _, r := range d.Message {
		if r < ' ' || r == 0x7f {
			t.Errorf("%s(%d).Message = %q, want no control characters", fn, status, d.Message)
			break
		}
	}
	if d.Action == pderrors.Pause && !d.Alert {
		t.Errorf("%s(%d) = pause (%v) without Alert, want every pause to alert", fn, status, d.Reason)
	}
	if d.Action == pderrors.Succeed && d.Reason != pderrors.ReasonOK {
		t.Errorf("%s(%d) = %v/%v, want succeed only with reason ok", fn, status, d.Action, d.Reason)
	}
}

// seconds is n seconds.
func seconds(n float64) time.Duration { return time.Duration(n * float64(time.Second)) }
