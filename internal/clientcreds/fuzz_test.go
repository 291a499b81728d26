package clientcreds

import (
	"strings"
	"testing"
)

// FuzzParse: any secret string leaves parse without a panic; an accepted one has a client id
// and secret that are not the placeholder and a long enough state key; a problem never quotes
// the value.
func FuzzParse(f *testing.F) {
	f.Add(`{"client_id":"id","client_secret":"secret","state_key":"0123456789abcdef0123456789abcdef"}`)
	f.Add(`{"client_id":"REPLACE_ME","client_secret":"s","state_key":"k","webhook_user":"u"}`)
	f.Add(`{"client_id":1}`)
	f.Add(` [] `)
	f.Fuzz(func(t *testing.T, value string) {
		c, problem := parse(value)
		if problem != "" {
			if len(value) >= 12 && strings.Contains(problem, value) {
				t.Fatalf("problem %q quotes the value", problem)
			}
			return
		}
		if c.ClientID == "" || c.ClientSecret == "" || strings.EqualFold(c.ClientSecret, Placeholder) ||
			strings.EqualFold(c.ClientID, Placeholder) || len(c.StateKey) < MinStateKeyLen || c.Webhook.Password == "" {
			t.Fatalf("parse accepted %v", c)
		}
	})
}
