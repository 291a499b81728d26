package pderrors_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// A client classifies a response, returns the Decision inside an *Error, and a caller further
// up decides with errors.As or DecisionOf, whatever wrapped the error on the way.
func Example() {
	body := []byte(`{"success":false,"error":"Invalid token: access_token is invalid","error_info":"Please check developers.pipedrive.com","data":null,"additional_data":null}`)
	d := pderrors.ClassifyAPI(http.StatusUnauthorized, nil, body)
	err := fmt.Errorf("sync deals for company 42: %w", &pderrors.Error{Op: "GET /api/v2/deals", Decision: d})

	var pe *pderrors.Error
	if errors.As(err, &pe) {
		fmt.Println("action:", pe.Decision.Action, "reason:", pe.Decision.Reason)
	}
	fmt.Println(err)

	// Errors without a response decide too.
	for _, err := range []error{nil, err, context.DeadlineExceeded, errors.New("odd")} {
		d := pderrors.DecisionOf(err)
		fmt.Println(d.Action, d.Reason)
	}
	// Output:
	// action: refresh_and_retry reason: access_token_invalid
	// sync deals for company 42: GET /api/v2/deals: http 401: refresh_and_retry (access_token_invalid): Invalid token: access_token is invalid
	// succeed ok
	// refresh_and_retry access_token_invalid
	// retry timeout
	// retry unknown_error
}

// A burst 429 carries the server's wait hint; the spent daily budget pauses the company, and
// its x-ratelimit-reset (the burst window's) is no hint for that.
func ExampleClassifyAPI() {
	h := http.Header{}
	h.Set("Retry-After", "7")
	h.Set("X-RateLimit-Reset", "2")
	d := pderrors.ClassifyAPI(http.StatusTooManyRequests, h, nil)
	fmt.Println(d.Action, d.Reason, d.RetryAfter, d.Alert)

	h.Del("Retry-After")
	body := []byte(`{"success":false,"error":"daily request budget exceeded"}`)
	d = pderrors.ClassifyAPI(http.StatusTooManyRequests, h, body)
	fmt.Println(d.Action, d.Reason, d.RetryAfter, d.Alert)
	// Output:
	// retry rate_limited 7s false
	// pause daily_budget_exceeded 0s true
}

// A caller paces its calls with the headers of every answer.
func ExampleRateLimitOf() {
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "80")
	h.Set("X-RateLimit-Remaining", "3")
	h.Set("X-RateLimit-Reset", "2")
	h.Set("X-Daily-Ratelimit-Token-Limit", "30000")
	h.Set("X-Daily-Ratelimit-Token-Remaining", "0")
	rl := pderrors.RateLimitOf(h)
	fmt.Println(rl.Limit, rl.Remaining, rl.Reset, rl.DailyLimit, rl.BudgetSpent())
	// Output:
	// 80 3 2s 30000 true
}

// A lost refresh token means the user must install the app again, and a person is told.
func ExampleClassifyOAuth() {
	body := []byte(`{"success":false,"message":"Invalid grant: refresh token is invalid","error":"invalid_grant"}`)
	d := pderrors.ClassifyOAuth(http.StatusBadRequest, nil, body)
	fmt.Println(d.Action, d.Reason, d.Alert)
	fmt.Println(d.Message)
	// Output:
	// reauthorize refresh_token_invalid true
	// Invalid grant: refresh token is invalid
}
