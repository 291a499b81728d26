package callback

import (
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installpage"
)

// renderPage answers status with p as HTML.
func renderPage(status int, p installpage.Page) events.APIGatewayV2HTTPResponse {
	body, ok := installpage.Render(p)
	if !ok {
		status = http.StatusInternalServerError
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: installpage.SecurityHeaders(installpage.HTML), Body: body}
}

// redirect answers 302 to location, with the same no-store headers as a page.
func redirect(location string) events.APIGatewayV2HTTPResponse {
	r := renderPage(http.StatusFound, installpage.Redirecting(location))
	r.Headers["Location"] = location
	return r
}

// jsonResponse answers status with a fixed JSON body (the uninstall API).
func jsonResponse(status int, body string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: installpage.SecurityHeaders("application/json"), Body: body}
}

// methodNotAllowed answers 405 with the Allow header.
func methodNotAllowed(allow []string) events.APIGatewayV2HTTPResponse {
	return withHeader(renderPage(http.StatusMethodNotAllowed, installpage.MethodNotAllowed()), "Allow", strings.Join(allow, ", "))
}

// withHeader returns r with header name set to value (Retry-After, WWW-Authenticate, …).
func withHeader(r events.APIGatewayV2HTTPResponse, name, value string) events.APIGatewayV2HTTPResponse {
	r.Headers[name] = value
	return r
}
