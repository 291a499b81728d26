package refresh_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
)

// TestParseInvocation: one row per documented input of the refresher function.
func TestParseInvocation(t *testing.T) {
	acme := installation.ID{CompanyID: 3408256, UserID: 5206648}
	tests := []struct {
		in      string
		want    refresh.Invocation
		problem string // the InputError's problem, "" for none
	}{
		{``, refresh.Invocation{Mode: refresh.ModeSchedule}, ""},
		{`null`, refresh.Invocation{Mode: refresh.ModeSchedule}, ""},
		{`{}`, refresh.Invocation{Mode: refresh.ModeSchedule}, ""},
		{`{"version":"0","source":"aws.scheduler"}`, refresh.Invocation{Mode: refresh.ModeSchedule}, ""},
		{`[1]`, refresh.Invocation{Mode: refresh.ModeSchedule}, ""},
		{`{"shard":3}`, refresh.Invocation{Mode: refresh.ModeShard, Shard: 3}, ""},
		{`{"shard":-1}`, refresh.Invocation{Mode: refresh.ModeShard}, `want {"shard":<non-negative integer>}`},
		{`{"shard":1,"x":2}`, refresh.Invocation{Mode: refresh.ModeShard}, `want {"shard":<non-negative integer>}`},
		{`{"company_id":3408256,"user_id":"5206648","force":true}`, refresh.Invocation{Mode: refresh.ModeManual, ID: acme, Force: true}, ""},
		{`{"company_id":3408256,"user_id":5206648}`, refresh.Invocation{Mode: refresh.ModeManual, ID: acme}, ""},
		{`{"company_id":3408256}`, refresh.Invocation{Mode: refresh.ModeManual}, "user_id is required"},
		{`{"company_id":"acme","user_id":1}`, refresh.Invocation{Mode: refresh.ModeManual}, "company_id must be a positive integer"},
		{`{"force":true}`, refresh.Invocation{Mode: refresh.ModeManual}, "company_id is required"},
		{`{not json`, refresh.Invocation{Mode: refresh.ModeSchedule}, "not JSON"},
	}
	for _, tt := range tests {
		got, err := refresh.ParseInvocation(json.RawMessage(tt.in))
		var ie *refresh.InputError
		switch {
		case tt.problem == "" && err != nil:
			t.Errorf("ParseInvocation(%s) error = %v, want none", tt.in, err)
		case tt.problem != "" && (!errors.As(err, &ie) || !errors.Is(err, refresh.ErrBadInput) || len(ie.Problem) < len(tt.problem) || ie.Problem[:len(tt.problem)] != tt.problem):
			t.Errorf("ParseInvocation(%s) error = %v, want an InputError %q", tt.in, err, tt.problem)
		}
		if got != tt.want {
			t.Errorf("ParseInvocation(%s) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	p, err := refresh.ShardPayload(5)
	if got, _ := refresh.ParseInvocation(p); err != nil || got != (refresh.Invocation{Mode: refresh.ModeShard, Shard: 5}) {
		t.Errorf("ParseInvocation(ShardPayload(5)) = %+v, %v", got, err)
	}
}

// FuzzParseInvocation: any payload is the scheduler's, a shard's, a valid manual refresh or an
// *InputError, never a panic; an accepted manual refresh names a valid installation and an
// accepted shard is not negative.
func FuzzParseInvocation(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"company_id":3408256,"user_id":"5206648","force":true}`))
	f.Add([]byte(`{"company_id":1.5,"user_id":2}`))
	f.Add([]byte(`{"shard":3}`))
	f.Add([]byte(`{"shard":-1}`))
	f.Add([]byte(`{"version":"0","source":"aws.scheduler"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, in []byte) {
		inv, err := refresh.ParseInvocation(json.RawMessage(in))
		if err != nil {
			var ie *refresh.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("ParseInvocation error %v is not an *InputError", err)
			}
			return
		}
		switch inv.Mode {
		case refresh.ModeShard:
			if inv.Shard < 0 {
				t.Fatalf("accepted shard %d", inv.Shard)
			}
		case refresh.ModeManual:
			if !inv.ID.Valid() {
				t.Fatalf("accepted a manual refresh of %v", inv.ID)
			}
		case refresh.ModeSchedule:
		default:
			t.Fatalf("mode %q", inv.Mode)
		}
	})
}
