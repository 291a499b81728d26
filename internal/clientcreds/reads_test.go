package clientcreds_test

import (
	"context"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
)

// TestSecretReadsPerInstance measures the Secrets Manager reads of one function instance that
// uses the secret steadily: Load at cold start, then 1,000 Gets spread over 30 simulated
// minutes (one every 1.8 s, the first at the cold start). The reads are one at cold start, then one per DefaultTTL while
// the instance keeps using the secret, however many calls it serves. It logs one line for
// docs/capacity.md:
//
//	secret-reads instance=1 calls=1000 minutes=30 reads=… reads_per_5min=…
func TestSecretReadsPerInstance(t *testing.T) {
	const calls, minutes = 1000, 30
	id := createSecret(t, secretJSON("id-1", canarySecret, canaryKey))
	src, cnt, clk, _ := source(t, id)
	if _, err := src.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	step := time.Duration(minutes) * time.Minute / calls
	for range calls {
		if _, err := src.Get(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.Advance(step)
	}
	reads := cnt.calls.Load()
	per5 := float64(reads) / (minutes / 5)
	t.Logf("secret-reads instance=1 calls=%d minutes=%d reads=%d reads_per_5min=%.2f", calls, minutes, reads, per5)
	// The cold start's read, then one each time the cached value turns DefaultTTL old: at 5,
	// 10, 15, 20 and 25 minutes (the last call is 1.8 s before 30).
	if want := int32(minutes / 5); reads != want {
		t.Errorf("GetSecretValue calls = %d, want %d (one at cold start, one per %v)", reads, want, clientcreds.DefaultTTL)
	}
}
