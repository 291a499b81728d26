package pdoauth

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzParseToken: a token endpoint answer never panics the parser; an accepted one has an
// access token and a positive lifetime, and its api_domain, when the production policy accepts
// it, is https on a pipedrive.com host on port 443 or none.
func FuzzParseToken(f *testing.F) {
	f.Add([]byte(`{"access_token":"v1u:a","api_domain":"https://acme.pipedrive.com","expires_in":3599,"refresh_token":"1:1:r","scope":"base,deals:full","token_type":"Bearer"}`))
	f.Add([]byte(`{"access_token":"a","expires_in":"3600","scope":["base"],"api_domain":"https://acme.pipedrive.com.attacker.io:8443"}`))
	f.Add([]byte(`{"success":false,"message":"Invalid grant"}`))
	f.Add([]byte(` {"access_token":1}`))
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := parseToken(body, start)
		if err != nil {
			if strings.Contains(err.Error(), string(body)) && len(body) > 16 {
				t.Fatalf("error quotes the body: %v", err)
			}
			return
		}
		if tok.AccessToken == "" || tok.ExpiresIn <= 0 || !tok.ExpiresAt.After(start) {
			t.Fatalf("parseToken accepted %v", tok)
		}
		if d, err := ValidateAPIDomain(tok.APIDomain); err == nil {
			checkPipedriveDomain(t, d)
		}
	})
}

// FuzzValidateAPIDomain: whatever the production policy accepts is https to a pipedrive.com
// host on port 443 or none, and the loopback policy accepts a superset.
func FuzzValidateAPIDomain(f *testing.F) {
	for _, s := range []string{"https://acme.pipedrive.com", "https://acme.pipedrive.com.attacker.io:8443", "http://127.0.0.1:8080", "https://ACME.pipedrive.com:443/", "https://a.pipedrive.com%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := ValidateAPIDomain(raw)
		if err != nil {
			return
		}
		checkPipedriveDomain(t, d)
		if _, err := (APIDomainPolicy{AllowLoopback: true}).Validate(raw); err != nil {
			t.Fatalf("loopback policy refused %q, which the production policy accepts", raw)
		}
	})
}

func checkPipedriveDomain(t *testing.T, d string) {
	t.Helper()
	u, err := url.Parse(d)
	if err != nil || u.Scheme != "https" || !strings.HasSuffix(u.Hostname(), ".pipedrive.com") || (u.Port() != "" && u.Port() != "443") || u.Path != "" {
		t.Fatalf("accepted api_domain %q is not https on a pipedrive.com host", d)
	}
}
