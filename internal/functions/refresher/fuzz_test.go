package refresher

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzInput: any invocation payload is the scheduler's, a shard's, a valid manual refresh or
// an *InputError, never a panic; an accepted manual refresh names a valid installation and an
// accepted shard is not negative.
func FuzzInput(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"company_id":3408256,"user_id":"5206648","force":true}`))
	f.Add([]byte(`{"company_id":1.5,"user_id":2}`))
	f.Add([]byte(`{"shard":3}`))
	f.Add([]byte(`{"shard":-1}`))
	f.Add([]byte(`{"version":"0","source":"aws.scheduler"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, in []byte) {
		shard, isShard, err := parseShard(json.RawMessage(in))
		if isShard && err == nil && shard < 0 {
			t.Fatalf("parseShard accepted shard %d", shard)
		}
		var ie *InputError
		if err != nil && !errors.As(err, &ie) {
			t.Fatalf("parseShard error %v is not an *InputError", err)
		}
		manual, id, _, err := parseInput(json.RawMessage(in))
		if err != nil {
			if !errors.As(err, &ie) {
				t.Fatalf("parseInput error %v is not an *InputError", err)
			}
			return
		}
		if manual && !id.Valid() {
			t.Fatalf("parseInput accepted a manual refresh of %v", id)
		}
	})
}
