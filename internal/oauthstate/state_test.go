package oauthstate_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/oauthstate"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef0123456789abcdef")
	otherKey = []byte("ffffffffffffffffffffffffffffffffffffffffffffffff")
	t0       = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// issueAt returns a state issued by key at time at.
func issueAt(t *testing.T, key []byte, at time.Time) string {
	t.Helper()
	s := &oauthstate.Signer{Key: key, Now: fixedClock(at)}
	state, err := s.Issue()
	if err != nil {
		t.Fatalf("Issue() error = %v, want nil", err)
	}
	return state
}

// flip changes one byte of the decoded state at index i and re-encodes it.
func flip(t *testing.T, state string, i int) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil {
		t.Fatalf("decode %q: %v", state, err)
	}
	if i < 0 {
		i += len(raw)
	}
	raw[i] ^= 0x01
	return base64.RawURLEncoding.EncodeToString(raw)
}

func TestVerify(t *testing.T) {
	valid := issueAt(t, testKey, t0)
	tests := []struct {
		name  string
		state string
		now   time.Time
		want  error // nil means valid
	}{
		{"valid, just issued", valid, t0, nil},
		{"valid, at TTL", valid, t0.Add(oauthstate.DefaultTTL), nil},
		{"expired one second past TTL", valid, t0.Add(oauthstate.DefaultTTL + time.Second), oauthstate.ErrStateExpired},
		{"issued within skew in the future", issueAt(t, testKey, t0.Add(30*time.Second)), t0, nil},
		{"future-dated beyond skew", issueAt(t, testKey, t0.Add(2*time.Minute)), t0, oauthstate.ErrStateExpired},
		{"tampered version", flip(t, valid, 0), t0, oauthstate.ErrStateMalformed},
		{"tampered nonce", flip(t, valid, 3), t0, oauthstate.ErrStateForged},
		{"tampered issued-at", flip(t, valid, 20), t0, oauthstate.ErrStateForged},
		{"tampered mac", flip(t, valid, -1), t0, oauthstate.ErrStateForged},
		{"signed with another key", issueAt(t, otherKey, t0), t0, oauthstate.ErrStateForged},
		{"empty", "", t0, oauthstate.ErrStateMalformed},
		{"garbage", "not a state!", t0, oauthstate.ErrStateMalformed},
		{"right length, not base64url", strings.Repeat("*", len(valid)), t0, oauthstate.ErrStateMalformed},
		{"standard base64 alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(valid) + "+", t0, oauthstate.ErrStateMalformed},
		{"truncated", valid[:len(valid)-4], t0, oauthstate.ErrStateMalformed},
		{"extra characters", valid + "AAAA", t0, oauthstate.ErrStateMalformed},
		{"oversized", strings.Repeat("A", oauthstate.MaxLen+1), t0, oauthstate.ErrStateMalformed},
		{"padded", valid + "=", t0, oauthstate.ErrStateMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &oauthstate.Signer{Key: testKey, Now: fixedClock(tt.now)}
			err := s.Verify(tt.state)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify(%q) = %v, want nil", tt.state, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify(%q) = %v, want %v", tt.state, err, tt.want)
			}
			if tt.state != "" && strings.Contains(err.Error(), tt.state) {
				t.Errorf("Verify error %q contains the state", err)
			}
		})
	}
}

func TestIssueIsCompactURLSafeAndUnique(t *testing.T) {
	s := &oauthstate.Signer{Key: testKey}
	seen := map[string]bool{}
	for range 100 {
		state, err := s.Issue()
		if err != nil {
			t.Fatalf("Issue() error = %v", err)
		}
		if len(state) != 76 {
			t.Errorf("len(Issue()) = %d, want 76", len(state))
		}
		if strings.ContainsAny(state, "+/=%&?#") {
			t.Errorf("Issue() = %q, want URL-safe characters only", state)
		}
		if seen[state] {
			t.Fatalf("Issue() repeated %q", state)
		}
		seen[state] = true
		if err := s.Verify(state); err != nil {
			t.Errorf("Verify(Issue()) = %v, want nil", err)
		}
	}
}

func TestCustomTTLAndSkew(t *testing.T) {
	state := issueAt(t, testKey, t0)
	s := &oauthstate.Signer{Key: testKey, TTL: time.Minute, Now: fixedClock(t0.Add(61 * time.Second))}
	if err := s.Verify(state); !errors.Is(err, oauthstate.ErrStateExpired) {
		t.Errorf("Verify with TTL 1m after 61s = %v, want ErrStateExpired", err)
	}
	s = &oauthstate.Signer{Key: testKey, Skew: 5 * time.Minute, Now: fixedClock(t0.Add(-4 * time.Minute))}
	if err := s.Verify(state); err != nil {
		t.Errorf("Verify with skew 5m, issued 4m ahead = %v, want nil", err)
	}
}

func TestWeakKey(t *testing.T) {
	for _, key := range [][]byte{nil, []byte("short"), testKey[:oauthstate.MinKeyLen-1]} {
		s := &oauthstate.Signer{Key: key}
		if _, err := s.Issue(); !errors.Is(err, oauthstate.ErrWeakKey) {
			t.Errorf("Issue() with %d-byte key error = %v, want ErrWeakKey", len(key), err)
		}
		if err := s.Verify(issueAt(t, testKey, time.Now())); !errors.Is(err, oauthstate.ErrWeakKey) {
			t.Errorf("Verify() with %d-byte key = %v, want ErrWeakKey", len(key), err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	// Seeds are derived from a state signed with otherKey: the fuzzer mutates them freely but
	// cannot turn them into a state valid under testKey without forging the HMAC. (Seeds near a
	// testKey state would let a one-character mutation restore it.)
	state, err := (&oauthstate.Signer{Key: otherKey, Now: fixedClock(t0)}).Issue()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", "x", "====", state, state[:40], state[1:], state + "A", strings.Repeat("_", 76), strings.Repeat("A", 600)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s := &oauthstate.Signer{Key: testKey, Now: fixedClock(t0)}
		if err := s.Verify(in); err == nil {
			t.Fatalf("Verify(%q) = nil, want an error", in)
		}
	})
}
