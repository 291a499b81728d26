// Package installpage holds the HTML pages of the install flow (the OAuth callback's answers to
// a browser): fixed, friendly text, rendered through html/template, with the headers every
// such answer carries. No page shows request data, internal error text, a token, a code or a
// state: each is a function of at most a link the caller chose.
package installpage

import (
	"bytes"
	"html/template"
	"strconv"
	"time"
)

// Page is one fixed HTML answer.
type Page struct {
	Title string
	// Lines are paragraphs of fixed text.
	Lines []string
	// Link, when set, is shown as a button-like link with LinkText.
	Link     string
	LinkText string
}

// HTML is the Content-Type of a rendered page.
const HTML = "text/html; charset=utf-8"

// Render returns p as an HTML document. ok is false only if the template failed (it and the
// page values are fixed, so it cannot); the body is then a plain error document.
func Render(p Page) (body string, ok bool) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return "<!doctype html><title>Error</title><p>Something went wrong.</p>", false
	}
	return buf.String(), true
}

// Redirecting is the body of a redirect to location, for a browser that does not follow it.
func Redirecting(location string) Page {
	return Page{Title: "Redirecting", Lines: []string{"You are being redirected."}, Link: location, LinkText: "Continue"}
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

// SecurityHeaders are sent with every answer: nothing is cached (a page may follow a one-time
// code), nothing is sniffed, and the page may load nothing but its inline style.
func SecurityHeaders(contentType string) map[string]string {
	return map[string]string{
		"Content-Type":            contentType,
		"Cache-Control":           "no-store",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	}
}

// The pages. Each is a function of the restart link only, so no request data reaches a page.

func InvalidLink(restart string) Page {
	return Page{
		Title:    "This install link is invalid or expired",
		Lines:    []string{"The link you followed cannot be used any more. Start the installation again to continue."},
		Link:     restart,
		LinkText: "Start the installation again",
	}
}

func CodeExpired(restart string) Page {
	return Page{
		Title:    "This install link has expired",
		Lines:    []string{"The authorization took too long to complete and has expired. Start the installation again to continue."},
		Link:     restart,
		LinkText: "Start the installation again",
	}
}

func Cancelled(restart string) Page {
	return Page{
		Title:    "Installation cancelled",
		Lines:    []string{"You did not allow the app to access your Pipedrive account, so nothing was installed.", "You can start the installation again at any time."},
		Link:     restart,
		LinkText: "Install the app",
	}
}

func Success() Page {
	return Page{
		Title: "The app is installed",
		Lines: []string{"The installation is complete. You can close this window and return to Pipedrive."},
	}
}

func PipedriveDown(restart string) Page {
	return Page{
		Title:    "Pipedrive is not answering, try again",
		Lines:    []string{"Pipedrive did not answer in time, so the installation could not be finished. Please try again in a minute."},
		Link:     restart,
		LinkText: "Try again",
	}
}

func Busy() Page {
	return Page{
		Title: "Still working on it, try again",
		Lines: []string{"Your installation is still being completed. Reload this page in a few seconds."},
	}
}

func NotInstallable() Page {
	return Page{
		Title: "The app cannot be installed for this company",
		Lines: []string{
			"Pipedrive does not allow this app to be installed for the company you are signed in to.",
			"The app may not be available in the Marketplace for your company, or your Pipedrive company may be different from the one you expected. Switch company in Pipedrive or ask your Pipedrive administrator.",
		},
	}
}

func IdentityFailed(restart string) Page {
	return Page{
		Title:    "We could not finish the installation",
		Lines:    []string{"Pipedrive accepted the installation, but we could not read your user details from Pipedrive. Please try again in a minute."},
		Link:     restart,
		LinkText: "Try again",
	}
}

// TooManyAttempts: a cap on install callbacks (per network address or per install) refused
// this one. It tells the user when to retry: the cap's window, retryAfter.
func TooManyAttempts(retryAfter time.Duration) Page {
	minutes := max(int((retryAfter+time.Minute-1)/time.Minute), 1)
	wait := "a minute"
	if minutes > 1 {
		wait = strconv.Itoa(minutes) + " minutes"
	}
	return Page{Title: "Too many attempts", Lines: []string{
		"This install was tried too many times in a short while from your network or browser.",
		"Nothing is wrong with your account: please wait " + wait + ", then start the installation again from Pipedrive.",
	}}
}

// NotConfigured: the stack is deployed but its operator has not set the app's client id and
// secret yet. It says so plainly: whoever sees it is the operator trying the first install.
func NotConfigured() Page {
	return Page{Title: "This app is not configured yet", Lines: []string{
		"The app's backend is running, but its Pipedrive client id and secret have not been set.",
		"Operator: copy them from the app's OAuth settings in Pipedrive's Developer Hub and run `pdctl setup` (or set them in the stack's secret), then try again.",
	}}
}

func Error() Page {
	return Page{
		Title: "Something went wrong",
		Lines: []string{"The installation could not be completed because of a problem on our side. We have been notified. Please try again later."},
	}
}

func BadRequest() Page {
	return Page{Title: "Bad request", Lines: []string{"The request could not be understood."}}
}

func NotFound() Page {
	return Page{Title: "Not found", Lines: []string{"There is nothing at this address."}}
}

func MethodNotAllowed() Page {
	return Page{Title: "Method not allowed", Lines: []string{"This address does not accept that kind of request."}}
}

func URITooLong() Page {
	return Page{Title: "Address too long", Lines: []string{"The address of the request is longer than this service accepts."}}
}
