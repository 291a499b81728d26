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

// A bound state is accepted only with the binding issued with it (issue 11, finding 2): an
// attacker's state, given to a victim whose browser holds another binding or none, fails.
func TestVerifyBound(t *testing.T) {
	s := &oauthstate.Signer{Key: testKey, Now: fixedClock(t0)}
	state, binding, err := s.IssueBound()
	if err != nil {
		t.Fatalf("IssueBound() error = %v", err)
	}
	if len(binding) != oauthstate.BindingLen || len(state) != 76 {
		t.Fatalf("IssueBound() = state of %d chars, binding of %d; want 76 and %d", len(state), len(binding), oauthstate.BindingLen)
	}
	_, other, _ := s.IssueBound()
	unbound := issueAt(t, testKey, t0)
	tests := []struct {
		name, state, binding string
		now                  time.Time
		want                 error
	}{
		{"bound state with its binding", state, binding, t0, nil},
		{"bound state without a binding", state, "", t0, oauthstate.ErrStateUnbound},
		{"bound state with another browser's binding", state, other, t0, oauthstate.ErrStateUnbound},
		{"bound state with a truncated binding", state, binding[:42], t0, oauthstate.ErrStateUnbound},
		{"bound state with its binding, expired", state, binding, t0.Add(oauthstate.DefaultTTL + time.Second), oauthstate.ErrStateExpired},
		{"bound state, nonce tampered", flip(t, state, 3), binding, t0, oauthstate.ErrStateForged},
		{"bound state relabelled as unbound", flip(t, state, 0), "", t0, oauthstate.ErrStateMalformed},
		{"unbound state ignores the binding", unbound, other, t0, nil},
		{"unbound state without a binding", unbound, "", t0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &oauthstate.Signer{Key: testKey, Now: fixedClock(tt.now)}
			err := v.VerifyBound(tt.state, tt.binding)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("VerifyBound(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
	if err := s.Verify(state); !errors.Is(err, oauthstate.ErrStateUnbound) {
		t.Errorf("Verify(bound state) = %v, want ErrStateUnbound", err)
	}
	// With RequireBinding (REQUIRE_STATE=true) only a bound state with its binding counts.
	strict := &oauthstate.Signer{Key: testKey, Now: fixedClock(t0), RequireBinding: true}
	if err := strict.VerifyBound(unbound, binding); !errors.Is(err, oauthstate.ErrStateUnbound) {
		t.Errorf("RequireBinding: VerifyBound(unbound state) = %v, want ErrStateUnbound", err)
	}
	if err := strict.VerifyBound(state, binding); err != nil {
		t.Errorf("RequireBinding: VerifyBound(bound state, its binding) = %v, want nil", err)
	}
	if err := strict.VerifyBound(flip(t, unbound, 5), ""); !errors.Is(err, oauthstate.ErrStateForged) {
		t.Errorf("RequireBinding: VerifyBound(tampered unbound state) = %v, want ErrStateForged (checked first)", err)
	}
}

// FuzzVerifyBound: no mutation of a bound state signed under another key, with any binding,
// verifies; and a binding that is not the issued one never makes a bound state verify.
func FuzzVerifyBound(f *testing.F) {
	other := &oauthstate.Signer{Key: otherKey, Now: fixedClock(t0)}
	state, binding, err := other.IssueBound()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(state, binding)
	f.Add(state, "")
	f.Add(state[:40], binding+"x")
	f.Add("", strings.Repeat("A", 43))
	s := &oauthstate.Signer{Key: testKey, Now: fixedClock(t0)}
	mine, myBinding, err := s.IssueBound()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in, b string) {
		if err := s.VerifyBound(in, b); err == nil && in != mine {
			t.Fatalf("VerifyBound(%q, %q) = nil for a state this key did not issue", in, b)
		}
		if b != myBinding {
			if err := s.VerifyBound(mine, b); !errors.Is(err, oauthstate.ErrStateUnbound) {
				t.Fatalf("VerifyBound(bound state, %q) = %v, want ErrStateUnbound", b, err)
			}
		}
	})
}
