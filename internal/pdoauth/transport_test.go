package pdoauth_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// TestDefaultClientKeepsItsConnections: the refresher's 8 token calls in flight, four rounds
// of them, reuse the 8 connections of the first round with the client's default transport,
// where http.DefaultTransport (2 idle connections per host) opens new ones for 6 calls of
// every later round: a TLS handshake each, in production.
func TestDefaultClientKeepsItsConnections(t *testing.T) {
	const inFlight, rounds = 8, 4
	opened := func(hc *http.Client) int64 {
		srv := testenv.NewRoundServer(t, inFlight, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"success":true}`))
		})
		c := &pdoauth.Client{BaseURL: srv.URL, Credentials: pdoauth.StaticCredentials("id", "secret"), HTTP: hc}
		for range rounds {
			var wg sync.WaitGroup
			for i := range inFlight {
				wg.Go(func() {
					if err := c.Revoke(context.Background(), "tok-"+string(rune('a'+i)), "access_token"); err != nil {
						t.Errorf("Revoke = %v", err)
					}
				})
			}
			wg.Wait()
		}
		return srv.NewConns.Load()
	}
	shared, stock := opened(nil), opened(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()})
	t.Logf("%d rounds of %d calls in flight: %d connections with the default client, %d with http.DefaultTransport", rounds, inFlight, shared, stock)
	if got := shared; got > inFlight {
		t.Errorf("default client: %d connections for %d rounds of %d calls in flight, want at most %d (pdoauth.MaxInFlight %d idle per host)", got, rounds, inFlight, inFlight, pdoauth.MaxInFlight)
	}
	// The measure can fail: http.DefaultTransport's settings open more.
	if got := stock; got <= inFlight {
		t.Errorf("http.DefaultTransport: %d connections, want more than %d (it keeps 2 idle per host)", got, inFlight)
	}
}
