// Package oauthstate issues and verifies the OAuth `state` parameter: a short, signed,
// expiring value that ties a callback to an install this app started.
//
// A state is base64url (no padding) of
//
//	version (1 byte) | nonce (16 random bytes) | issued-at (8 bytes, Unix seconds, big endian) | HMAC-SHA256 (32 bytes)
//
// where the HMAC covers everything before it and is keyed with the app's state key (the
// `state_key` of the client secret). The result is 76 characters: safe in a URL, opaque to the
// user, and free of any server-side storage. A state proves that this app issued it recently;
// it is not single-use (Pipedrive's authorization code is, and the callback exchanges the code).
//
// # Binding to a browser
//
// A state alone proves only that somebody got it from this app, and anybody can (the install
// link is public): an attacker could start an install, stop at Pipedrive's redirect and hand
// their own code and state to a victim (login or account-linking CSRF). IssueBound therefore
// also returns a binding, a random value the caller puts in a cookie of the browser that
// started the install; the state (version 2) carries SHA-256 of it in place of the random
// nonce, under the HMAC. VerifyBound accepts a version 2 state only together with that
// binding (ErrStateUnbound otherwise), so the state works only in the browser that started the
// install. Version 1 states (Issue) carry no binding and verify as before.
//
// Key rotation: a Signer holds one key. Build it per invocation from the current credentials
// (clientcreds.Source.Get), so a rotated key is picked up with the next cache refresh; a state
// issued under the previous key then fails with ErrStateForged, which the callback treats like
// a missing state (at worst a user restarts an install begun in the minutes around a rotation).
package oauthstate

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors returned (wrapped) by Verify; branch on them with errors.Is.
var (
	// ErrStateMalformed: the value is empty, too long, not base64url, or not of our layout.
	ErrStateMalformed = errors.New("oauthstate: malformed state")
	// ErrStateForged: the layout is right but the HMAC does not match this key.
	ErrStateForged = errors.New("oauthstate: state signature mismatch")
	// ErrStateExpired: the signature is right but the state is outside its validity window:
	// older than TTL, or issued further in the future than Skew (a clock problem or a key leak).
	ErrStateExpired = errors.New("oauthstate: state expired")
	// ErrWeakKey: the Signer's key is shorter than MinKeyLen; nothing is issued or accepted.
	ErrWeakKey = errors.New("oauthstate: state key too short")
	// ErrStateUnbound: the state is authentic and within its window, but it was issued bound
	// to a browser (IssueBound) and the binding presented is missing or another one.
	ErrStateUnbound = errors.New("oauthstate: state not bound to this browser")
)

const (
	// DefaultTTL is how long a state stays valid when Signer.TTL is zero: long enough for a
	// user to log in and approve, short enough that a leaked URL is soon useless.
	DefaultTTL = 10 * time.Minute
	// DefaultSkew is how far in the future an issued-at may lie when Signer.Skew is zero:
	// Lambda instances' clocks differ by far less.
	DefaultSkew = time.Minute
	// MinKeyLen is the shortest key accepted: 32 bytes, the HMAC-SHA256 block-strength floor.
	MinKeyLen = 32
	// MaxLen bounds the input Verify will decode; longer values are rejected before any work.
	MaxLen = 512
)

const (
	version      = 1
	versionBound = 2
	nonceLen     = 16
	iatLen       = 8
	macLen       = sha256.Size
	rawLen       = 1 + nonceLen + iatLen + macLen
)

// Signer issues and verifies states. The zero TTL, Skew and Now take defaults. A Signer is
// safe for concurrent use as long as its fields are not changed.
type Signer struct {
	// Key is the HMAC key, at least MinKeyLen bytes.
	Key []byte
	// TTL is how long an issued state stays valid; DefaultTTL when zero.
	TTL time.Duration
	// Skew is the tolerated future offset of issued-at; DefaultSkew when zero.
	Skew time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// RequireBinding refuses an unbound state (one from Issue) with ErrStateUnbound: when
	// states are required (REQUIRE_STATE=true), only a state bound to the browser that
	// started the install counts.
	RequireBinding bool
}

// Issue returns a new state, not bound to a browser. It fails only with ErrWeakKey.
func (s *Signer) Issue() (string, error) {
	var nonce [nonceLen]byte
	// crypto/rand.Read never returns an error (it aborts the program if the OS fails it).
	rand.Read(nonce[:])
	return s.issue(version, nonce[:])
}

// BindingLen is the length of a binding IssueBound returns: 32 random bytes, base64url.
const BindingLen = 43

// IssueBound returns a new state bound to binding, a fresh random value (BindingLen
// characters of base64url) for the caller to store in the browser that starts the install (a
// cookie); VerifyBound accepts the state only with it. It fails only with ErrWeakKey.
func (s *Signer) IssueBound() (state, binding string, err error) {
	var b [32]byte
	rand.Read(b[:])
	binding = base64.RawURLEncoding.EncodeToString(b[:])
	state, err = s.issue(versionBound, bindingDigest(binding))
	if err != nil {
		return "", "", err
	}
	return state, binding, nil
}

func (s *Signer) issue(v byte, nonce []byte) (string, error) {
	if len(s.Key) < MinKeyLen {
		return "", fmt.Errorf("issue state: %w (%d bytes, want at least %d)", ErrWeakKey, len(s.Key), MinKeyLen)
	}
	raw := make([]byte, rawLen)
	raw[0] = v
	copy(raw[1:1+nonceLen], nonce)
	binary.BigEndian.PutUint64(raw[1+nonceLen:], uint64(s.now().Unix()))
	copy(raw[rawLen-macLen:], s.mac(raw[:rawLen-macLen]))
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// bindingDigest is what a bound state carries in place of its nonce.
func bindingDigest(binding string) []byte {
	sum := sha256.Sum256([]byte("oauthstate binding v2\x00" + binding))
	return sum[:nonceLen]
}

// Verify returns nil if state was issued by this key within the validity window and is not
// bound to a browser, and otherwise an error wrapping ErrStateMalformed, ErrStateForged,
// ErrStateExpired, ErrStateUnbound (a bound state: use VerifyBound) or ErrWeakKey. Error
// strings never contain the state itself.
func (s *Signer) Verify(state string) error {
	return s.VerifyBound(state, "")
}

// VerifyBound is Verify for a state that may be bound to a browser: a state from IssueBound
// is accepted only when binding is the value IssueBound returned with it (ErrStateUnbound
// otherwise, checked after the signature and the validity window, so ErrStateUnbound means an
// authentic state presented by another browser). An unbound state (Issue) ignores binding,
// unless RequireBinding refuses it (ErrStateUnbound).
func (s *Signer) VerifyBound(state, binding string) error {
	if len(s.Key) < MinKeyLen {
		return fmt.Errorf("verify state: %w", ErrWeakKey)
	}
	// Check the length before decoding so a hostile query string costs nothing.
	if state == "" {
		return fmt.Errorf("verify state: empty: %w", ErrStateMalformed)
	}
	if len(state) > MaxLen {
		return fmt.Errorf("verify state: %d bytes, limit %d: %w", len(state), MaxLen, ErrStateMalformed)
	}
	if base64.RawURLEncoding.DecodedLen(len(state)) != rawLen {
		return fmt.Errorf("verify state: length %d: %w", len(state), ErrStateMalformed)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(state)
	if err != nil || len(raw) != rawLen {
		return fmt.Errorf("verify state: not base64url: %w", ErrStateMalformed)
	}
	if raw[0] != version && raw[0] != versionBound {
		return fmt.Errorf("verify state: version %d: %w", raw[0], ErrStateMalformed)
	}
	// hmac.Equal is constant-time: timing reveals nothing about how much of a guess matched.
	if !hmac.Equal(raw[rawLen-macLen:], s.mac(raw[:rawLen-macLen])) {
		return fmt.Errorf("verify state: %w", ErrStateForged)
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(raw[1+nonceLen:])), 0)
	now := s.now()
	if issued.After(now.Add(s.skew())) {
		return fmt.Errorf("verify state: issued %s in the future: %w", issued.Sub(now).Round(time.Second), ErrStateExpired)
	}
	if age := now.Sub(issued); age > s.ttl() {
		return fmt.Errorf("verify state: age %s exceeds %s: %w", age.Round(time.Second), s.ttl(), ErrStateExpired)
	}
	if raw[0] == version && s.RequireBinding {
		return fmt.Errorf("verify state: issued without a browser binding: %w", ErrStateUnbound)
	}
	if raw[0] == versionBound {
		// Constant time: how much of a guessed binding matched must not show.
		if len(binding) != BindingLen || subtle.ConstantTimeCompare(raw[1:1+nonceLen], bindingDigest(binding)) != 1 {
			return fmt.Errorf("verify state: %w", ErrStateUnbound)
		}
	}
	return nil
}

func (s *Signer) mac(msg []byte) []byte {
	m := hmac.New(sha256.New, s.Key)
	m.Write(msg)
	return m.Sum(nil)
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Signer) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return DefaultTTL
}

func (s *Signer) skew() time.Duration {
	if s.Skew > 0 {
		return s.Skew
	}
	return DefaultSkew
}
