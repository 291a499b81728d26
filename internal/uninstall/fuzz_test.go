package uninstall

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// FuzzParseBody: the uninstall body and Basic header parsers never panic; an accepted body
// names positive ids; a well-formed Basic header round-trips.
func FuzzParseBody(f *testing.F) {
	f.Add([]byte(`{"client_id":"x","company_id":3408256,"user_id":"5206648","timestamp":"2026-11-27T12:30:00Z"}`), "id", "secret")
	f.Add([]byte(`{"company_id":1e3,"user_id":2,"timestamp":1795782600000}`), "", ":")
	f.Add([]byte(`[`), "a:b", "")
	f.Fuzz(func(t *testing.T, body []byte, user, pass string) {
		if u, err := ParseBody(body); err == nil && (u.CompanyID <= 0 || u.UserID <= 0) {
			t.Fatalf("ParseBody accepted ids %d:%d", u.CompanyID, u.UserID)
		} else if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseBody error %v does not wrap ErrMalformed", err)
		}
		basicCredentials(string(body)) // arbitrary header text
		if strings.Contains(user, ":") {
			return
		}
		gu, gp, ok := basicCredentials("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
		if !ok || gu != user || gp != pass {
			t.Fatalf("basicCredentials(Basic %q:%q) = %q, %q, %t", user, pass, gu, gp, ok)
		}
	})
}
