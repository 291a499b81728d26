package pdapi_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// TestDefaultClientKeepsItsConnections: 5 API calls in flight to one company's api_domain,
// four rounds of them, reuse the first round's connections with the client's default
// transport, where http.DefaultTransport (2 idle connections per host) opens new ones.
func TestDefaultClientKeepsItsConnections(t *testing.T) {
	t.Setenv("PIPEDRIVE_ALLOW_LOOPBACK", "true") // the test server's api_domain is loopback
	const inFlight, rounds = 5, 4
	opened := func(hc *http.Client) int64 {
		srv := testenv.NewRoundServer(t, inFlight, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"success":true,"data":[]}`))
		})
		c := &pdapi.Client{HTTP: hc}
		for range rounds {
			var wg sync.WaitGroup
			for range inFlight {
				wg.Go(func() {
					if _, err := c.Do(context.Background(), http.MethodGet, srv.URL, "/api/v2/deals", "access-token", nil); err != nil {
						t.Errorf("Do = %v", err)
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
		t.Errorf("default client: %d connections for %d rounds of %d calls in flight, want at most %d (pdapi.MaxInFlightPerHost %d idle per host)", got, rounds, inFlight, inFlight, pdapi.MaxInFlightPerHost)
	}
	if got := stock; got <= inFlight {
		t.Errorf("http.DefaultTransport: %d connections, want more than %d (it keeps 2 idle per host)", got, inFlight)
	}
}
