package callback

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// page is one fixed, friendly HTML answer. Pages never show internal error text, tokens, codes
// or state: only the fixed words below and a link the handler chose.
type page struct {
	Title string
	// Lines are paragraphs of fixed text.
	Lines []string
	// Link, when set, is shown as a button-like link with LinkText.
	Link     string
	LinkText string
}

// pageTemplate escapes every value (html/template), including the link's URL.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f5f6f7;color:#21232c;margin:0}
main{max-width:32rem;margin:12vh auto;background:#fff;border-radius:8px;padding:2rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin-top:0}
a.button{display:inline-block;margin-top:1rem;padding:.6rem 1.1rem;background:#017737;color:#fff;border-radius:4px;text-decoration:none}
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{range .Lines}}<p>{{.}}</p>
{{end}}{{if .Link}}<a class="button" href="{{.Link}}">{{.LinkText}}</a>
{{end}}</main>
</body>
</html>
`))

// securityHeaders are sent with every answer: nothing is cached (a page may follow a one-time
// code), nothing is sniffed, and the page may load nothing but its inline style.
func securityHeaders(contentType string) map[string]string {
	return map[string]string{
		"Content-Type":            contentType,
		"Cache-Control":           "no-store",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	}
}

// renderPage answers status with p as HTML.
func renderPage(status int, p page) events.APIGatewayV2HTTPResponse {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		// The template and the page values are fixed, so this cannot happen; answer plainly
		// rather than panic.
		buf.Reset()
		buf.WriteString("<!doctype html><title>Error</title><p>Something went wrong.</p>")
		status = http.StatusInternalServerError
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    securityHeaders("text/html; charset=utf-8"),
		Body:       buf.String(),
	}
}

// redirect answers 302 to location, with the same no-store headers as a page.
func redirect(location string) events.APIGatewayV2HTTPResponse {
	h := securityHeaders("text/html; charset=utf-8")
	h["Location"] = location
	var buf bytes.Buffer
	_ = pageTemplate.Execute(&buf, page{Title: "Redirecting", Lines: []string{"You are being redirected."}, Link: location, LinkText: "Continue"})
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusFound, Headers: h, Body: buf.String()}
}

// jsonResponse answers status with a fixed JSON body (used for the uninstall API).
func jsonResponse(status int, body string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    securityHeaders("application/json"),
		Body:       body,
	}
}

// The pages. Each is a function of the restart link only, so no request data reaches a page.

func pageInvalidLink(restart string) page {
	return page{
		Title:    "This install link is invalid or expired",
		Lines:    []string{"The link you followed cannot be used any more. Start the installation again to continue."},
		Link:     restart,
		LinkText: "Start the installation again",
	}
}

func pageCodeExpired(restart string) page {
	return page{
		Title:    "This install link has expired",
		Lines:    []string{"The authorization took too long to complete and has expired. Start the installation again to continue."},
		Link:     restart,
		LinkText: "Start the installation again",
	}
}

func pageCancelled(restart string) page {
	return page{
		Title:    "Installation cancelled",
		Lines:    []string{"You did not allow the app to access your Pipedrive account, so nothing was installed.", "You can start the installation again at any time."},
		Link:     restart,
		LinkText: "Install the app",
	}
}

func pageSuccess() page {
	return page{
		Title: "The app is installed",
		Lines: []string{"The installation is complete. You can close this window and return to Pipedrive."},
	}
}

func pagePipedriveDown(restart string) page {
	return page{
		Title:    "Pipedrive is not answering, try again",
		Lines:    []string{"Pipedrive did not answer in time, so the installation could not be finished. Please try again in a minute."},
		Link:     restart,
		LinkText: "Try again",
	}
}

func pageBusy() page {
	return page{
		Title: "Still working on it, try again",
		Lines: []string{"Your installation is still being completed. Reload this page in a few seconds."},
	}
}

func pageNotInstallable() page {
	return page{
		Title: "The app cannot be installed for this company",
		Lines: []string{
			"Pipedrive does not allow this app to be installed for the company you are signed in to.",
			"The app may not be available in the Marketplace for your company, or your Pipedrive company may be different from the one you expected. Switch company in Pipedrive or ask your Pipedrive administrator.",
		},
	}
}

func pageIdentityFailed(restart string) page {
	return page{
		Title:    "We could not finish the installation",
		Lines:    []string{"Pipedrive accepted the installation, but we could not read your user details from Pipedrive. Please try again in a minute."},
		Link:     restart,
		LinkText: "Try again",
	}
}

func pageTooManyAttempts() page {
	return page{Title: "Too many attempts", Lines: []string{
		"This install was tried too many times in a short while.",
		"Please wait a few minutes, then start the installation again from Pipedrive.",
	}}
}

// pageNotConfigured: the stack is deployed but its operator has not set the app's client id and
// secret yet. It says so plainly: whoever sees it is the operator trying the first install.
func pageNotConfigured() page {
	return page{Title: "This app is not configured yet", Lines: []string{
		"The app's backend is running, but its Pipedrive client id and secret have not been set.",
		"Operator: copy them from the app's OAuth settings in Pipedrive's Developer Hub and run `pdctl setup` (or set them in the stack's secret), then try again.",
	}}
}

func pageError() page {
	return page{
		Title: "Something went wrong",
		Lines: []string{"The installation could not be completed because of a problem on our side. We have been notified. Please try again later."},
	}
}

func pageBadRequest() page {
	return page{Title: "Bad request", Lines: []string{"The request could not be understood."}}
}

func pageNotFound() page {
	return page{Title: "Not found", Lines: []string{"There is nothing at this address."}}
}

func pageMethodNotAllowed() page {
	return page{Title: "Method not allowed", Lines: []string{"This address does not accept that kind of request."}}
}

func pageURITooLong() page {
	return page{Title: "Address too long", Lines: []string{"The address of the request is longer than this service accepts."}}
}

// methodNotAllowed answers 405 with the Allow header.
func methodNotAllowed(allow []string) events.APIGatewayV2HTTPResponse {
	return withHeader(renderPage(http.StatusMethodNotAllowed, pageMethodNotAllowed()), "Allow", strings.Join(allow, ", "))
}

// withHeader returns r with header name set to value (Retry-After, WWW-Authenticate, …).
func withHeader(r events.APIGatewayV2HTTPResponse, name, value string) events.APIGatewayV2HTTPResponse {
	r.Headers[name] = value
	return r
}
