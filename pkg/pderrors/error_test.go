package pderrors_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

func TestErrorError(t *testing.T) {
	tests := []struct {
		name string
		err  *pderrors.Error
		want string
	}{
		{"full", &pderrors.Error{Op: "GET /api/v1/users/me", Decision: pderrors.Decision{Action: pderrors.RefreshAndRetry, Reason: pderrors.ReasonAccessTokenInvalid, Status: 401, Message: "Invalid token: access_token is invalid"}},
			"GET /api/v1/users/me: http 401: refresh_and_retry (access_token_invalid): Invalid token: access_token is invalid"},
		{"no status, no message", &pderrors.Error{Op: "oauth token refresh_token", Decision: pderrors.Decision{Action: pderrors.Retry, Reason: pderrors.ReasonNetwork}, Err: syscall.ECONNREFUSED},
			"oauth token refresh_token: retry (network)"},
		{"no op, no reason", &pderrors.Error{Decision: pderrors.Decision{Action: pderrors.DeadLetter, Status: 404}},
			"http 404: dead_letter"},
		{"no decision shows its cause's", &pderrors.Error{Op: "GET /x", Err: syscall.ECONNRESET}, "GET /x: retry (network)"},
		{"nil", nil, "<nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("(%+v).Error() = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestErrorSafeToLog: the cause's text (a URL with a code, a response body) never reaches Error.
func TestErrorSafeToLog(t *testing.T) {
	const secret = "code=abc123secretcode"
	body := []byte(`{"success":false,"message":"Invalid grant: refresh token is invalid","refresh_token":"1:1:zzz-leaked"}`)
	cause := fmt.Errorf("Post \"https://oauth.pipedrive.com/oauth/token?%s\": response %s", secret, body)
	e := &pderrors.Error{Op: "oauth token authorization_code", Decision: pderrors.ClassifyOAuth(400, nil, body), Err: cause}
	got := e.Error()
	for _, leak := range []string{secret, "1:1:zzz-leaked", "oauth.pipedrive.com/oauth/token?"} {
		if strings.Contains(got, leak) {
			t.Errorf("Error() = %q, want it without %q", got, leak)
		}
	}
	if want := "oauth token authorization_code: http 400: reauthorize (refresh_token_invalid): Invalid grant: refresh token is invalid"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestErrorUnwrap(t *testing.T) {
	e := &pderrors.Error{Op: "GET /api/v2/deals", Decision: pderrors.Decision{Action: pderrors.Retry, Reason: pderrors.ReasonNetwork}, Err: syscall.ECONNRESET}
	if !errors.Is(e, syscall.ECONNRESET) {
		t.Errorf("errors.Is(%v, ECONNRESET) = false, want true", e)
	}
	if got := e.Unwrap(); got != syscall.ECONNRESET {
		t.Errorf("Unwrap() = %v, want %v", got, syscall.ECONNRESET)
	}
	var nilErr *pderrors.Error
	if got := nilErr.Unwrap(); got != nil {
		t.Errorf("(*Error)(nil).Unwrap() = %v, want nil", got)
	}
	wrapped := fmt.Errorf("sync deals: %w", e)
	var target *pderrors.Error
	if !errors.As(wrapped, &target) || target != e {
		t.Errorf("errors.As(%v, *Error) = %v, want %v", wrapped, target, e)
	}
}

// timeoutErr is a real client timeout: an http.Client with a short Timeout against a server
// that answers too late.
func timeoutErr(t *testing.T) error {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	client := &http.Client{Timeout: 50 * time.Millisecond}
	resp, err := client.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s with a 50ms timeout = %s, want a timeout error", srv.URL, resp.Status)
	}
	return err
}

// refusedAddr returns a loopback address nothing listens on: a listener's port, closed.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	return addr
}

// dialRefused dials a closed loopback port.
func dialRefused(t *testing.T) error {
	t.Helper()
	addr := refusedAddr(t)
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("dial %s = connected, want connection refused", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s = %v, want connection refused", addr, err)
	}
	return err
}

// getRefused GETs a closed loopback port with an http.Client.
func getRefused(t *testing.T) error {
	t.Helper()
	addr := refusedAddr(t)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/api/v1/users/me")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s = %s, want connection refused", addr, resp.Status)
	}
	return err
}

func TestDecisionOf(t *testing.T) {
	apiErr := &pderrors.Error{Op: "GET /api/v1/users/me", Decision: pderrors.ClassifyAPI(401, nil, nil)}
	oauthErr := &pderrors.Error{Op: "oauth token refresh_token", Decision: pderrors.ClassifyOAuth(400, nil, []byte(oauthMsg(msgRefreshInvalid)))}
	var nilErr *pderrors.Error
	deadline, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	t.Cleanup(cancel)
	<-deadline.Done()

	retry := func(r pderrors.Reason) pderrors.Decision { return pderrors.Decision{Action: pderrors.Retry, Reason: r} }
	tests := []struct {
		name string
		err  error
		want pderrors.Decision
	}{
		{"nil", nil, pderrors.Decision{Action: pderrors.Succeed, Reason: pderrors.ReasonOK}},
		{"*Error", apiErr, apiErr.Decision},
		{"*Error wrapped with %w", fmt.Errorf("sync deals for 42: %w", apiErr), apiErr.Decision},
		{"*Error wrapped twice", fmt.Errorf("refresher: %w", fmt.Errorf("refresh 42: %w", oauthErr)), oauthErr.Decision},
		{"*Error inside errors.Join", errors.Join(errors.New("other"), oauthErr), oauthErr.Decision},
		{"*Error wins over its timeout cause", &pderrors.Error{Decision: pderrors.Decision{Action: pderrors.DeadLetter, Reason: pderrors.ReasonNotFound, Status: 404}, Err: context.DeadlineExceeded},
			pderrors.Decision{Action: pderrors.DeadLetter, Reason: pderrors.ReasonNotFound, Status: 404}},
		{"*Error without a Decision takes its cause's", &pderrors.Error{Op: "GET /x", Err: syscall.ECONNRESET}, retry(pderrors.ReasonNetwork)},
		{"*Error without a Decision or cause", &pderrors.Error{Op: "GET /x"}, retry(pderrors.ReasonUnknownError)},
		{"nil *Error in the chain", fmt.Errorf("x: %w", nilErr), retry(pderrors.ReasonUnknownError)},
		{"context.DeadlineExceeded", context.DeadlineExceeded, retry(pderrors.ReasonTimeout)},
		{"expired context", fmt.Errorf("call: %w", deadline.Err()), retry(pderrors.ReasonTimeout)},
		{"context.Canceled", fmt.Errorf("call: %w", context.Canceled), retry(pderrors.ReasonCanceled)},
		{"http.Client timeout", timeoutErr(t), retry(pderrors.ReasonTimeout)},
		{"os.ErrDeadlineExceeded", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), retry(pderrors.ReasonTimeout)},
		{"ETIMEDOUT", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}, retry(pderrors.ReasonTimeout)},
		{"timeout inside errors.Join", errors.Join(errors.New("a"), fmt.Errorf("b: %w", os.ErrDeadlineExceeded)), retry(pderrors.ReasonTimeout)},
		{"connection refused (dial)", dialRefused(t), retry(pderrors.ReasonNetwork)},
		{"connection refused (http.Client)", getRefused(t), retry(pderrors.ReasonNetwork)},
		{"DNS error", &net.DNSError{Err: "no such host", Name: "acme.pipedrive.com", IsNotFound: true}, retry(pderrors.ReasonNetwork)},
		{"DNS timeout", &net.DNSError{Err: "i/o timeout", Name: "acme.pipedrive.com", IsTimeout: true}, retry(pderrors.ReasonTimeout)},
		{"unexpected EOF", fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), retry(pderrors.ReasonNetwork)},
		{"EOF", fmt.Errorf("Post: %w", io.EOF), retry(pderrors.ReasonNetwork)},
		{"ECONNRESET", fmt.Errorf("read: %w", syscall.ECONNRESET), retry(pderrors.ReasonNetwork)},
		{"ECONNREFUSED bare", syscall.ECONNREFUSED, retry(pderrors.ReasonNetwork)},
		{"network error inside errors.Join", errors.Join(errors.New("a"), syscall.EPIPE), retry(pderrors.ReasonNetwork)},
		{"unknown error", errors.New("something odd"), retry(pderrors.ReasonUnknownError)},
		{"unknown errors joined", errors.Join(errors.New("a"), errors.New("b")), retry(pderrors.ReasonUnknownError)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pderrors.DecisionOf(tt.err); got != tt.want {
				t.Errorf("DecisionOf(%v) = %+v, want %+v", tt.err, got, tt.want)
			}
		})
	}
}
