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
// Key rotation: a Signer holds one key. Build it per invocation from the current credentials
// (clientcreds.Source.Get), so a rotated key is picked up with the next cache refresh; a state
// issued under the previous key then fails with ErrStateForged, which the callback treats like
// a missing state (at worst a user restarts an install begun in the minutes around a rotation).
package oauthstate

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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
	version  = 1
	nonceLen = 16
	iatLen   = 8
	macLen   = sha256.Size
	rawLen   = 1 + nonceLen + iatLen + macLen
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
}

// Issue returns a new state. It fails only with ErrWeakKey.
func (s *Signer) Issue() (string, error) {
	if len(s.Key) < MinKeyLen {
		return "", fmt.Errorf("issue state: %w (%d bytes, want at least %d)", ErrWeakKey, len(s.Key), MinKeyLen)
	}
	raw := make([]byte, rawLen)
	raw[0] = version
	// crypto/rand.Read never returns an error (it aborts the program if the OS fails it).
	rand.Read(raw[1 : 1+nonceLen])
	binary.BigEndian.PutUint64(raw[1+nonceLen:], uint64(s.now().Unix()))
	copy(raw[rawLen-macLen:], s.mac(raw[:rawLen-macLen]))
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// Verify returns nil if state was issued by this key within the validity window, and
// otherwise an error wrapping ErrStateMalformed, ErrStateForged, ErrStateExpired or ErrWeakKey.
// Error strings never contain the state itself.
func (s *Signer) Verify(state string) error {
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
	if raw[0] != version {
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
