// Package tokencrypt seals the installations' OAuth tokens before they reach the tokens table,
// with envelope encryption under a customer-managed KMS key (TokensKey in template.yaml).
//
// Each sealed value is self-contained: the KMS-encrypted data key, a nonce and the AES-256-GCM
// ciphertext. The data key is generated with the encryption context {"pk": <the item's key>},
// so KMS decrypts it only for that installation (a sealed value copied to another item does
// not open there), CloudTrail names the installation of every Decrypt, and IAM can condition
// kms:Decrypt and kms:GenerateDataKey on kms:EncryptionContext:pk. The same pk is the GCM
// additional data.
//
// Cost: Envelope caches, per process, the data key it generated for an installation (reused for
// MaxUses seals or MaxAge, whichever comes first) and the plaintext of every data key it
// decrypted, by its encrypted blob, for MaxAge. Sealing a refresh's two tokens is one
// GenerateDataKey; opening them (sealed together) is one Decrypt; opening what this process
// sealed is none.
package tokencrypt

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMS is the part of the KMS API Envelope uses; *kms.Client satisfies it.
type KMS interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

var _ KMS = (*kms.Client)(nil)

// ContextKey is the encryption context key whose value is the item's partition key.
const ContextKey = "pk"

// Defaults of Envelope's cache bounds.
const (
	DefaultMaxAge     = 5 * time.Minute
	DefaultMaxUses    = 100
	DefaultMaxEntries = 1000
)

// version is the first byte of every sealed value.
const version byte = 1

// ErrMalformed: the bytes are not a value Seal produced (or were cut or altered).
var ErrMalformed = errors.New("tokencrypt: malformed sealed value")

// ErrOpen: the value does not open under this key and context (another installation's value,
// altered ciphertext, or a key KMS refuses).
var ErrOpen = errors.New("tokencrypt: cannot open sealed value")

// Envelope seals and opens small secrets under data keys from KMS key KeyID. Safe for
// concurrent use; the zero cache bounds take the defaults.
type Envelope struct {
	// KMS is the client; KeyID the key (id, ARN or alias) that wraps every data key. Decrypt
	// is pinned to KeyID, so a value sealed under another key does not open.
	KMS   KMS
	KeyID string
	// MaxAge bounds how long a generated or decrypted data key is reused (DefaultMaxAge).
	MaxAge time.Duration
	// MaxUses bounds how many values one generated data key seals (DefaultMaxUses).
	MaxUses int
	// MaxEntries bounds each of the two caches (DefaultMaxEntries).
	MaxEntries int
	// Now is the clock, time.Now if nil.
	Now func() time.Time

	mu     sync.Mutex
	sealer map[string]*sealKey  // by context value
	opener map[string]openedKey // by encrypted data key
	stats  struct{ generate, decrypt atomic.Int64 }
}

type sealKey struct {
	plain     []byte
	encrypted []byte
	until     time.Time
	uses      int
}

type openedKey struct {
	plain []byte
	until time.Time
}

// Stats counts the KMS requests an Envelope made.
type Stats struct {
	GenerateDataKey int64
	Decrypt         int64
}

// Total is the number of KMS requests.
func (s Stats) Total() int64 { return s.GenerateDataKey + s.Decrypt }

// Stats returns the KMS requests made so far.
func (e *Envelope) Stats() Stats {
	return Stats{GenerateDataKey: e.stats.generate.Load(), Decrypt: e.stats.decrypt.Load()}
}

func (e *Envelope) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Envelope) maxAge() time.Duration {
	if e.MaxAge > 0 {
		return e.MaxAge
	}
	return DefaultMaxAge
}

func (e *Envelope) maxUses() int {
	if e.MaxUses > 0 {
		return e.MaxUses
	}
	return DefaultMaxUses
}

func (e *Envelope) maxEntries() int {
	if e.MaxEntries > 0 {
		return e.MaxEntries
	}
	return DefaultMaxEntries
}

// Seal encrypts plaintext for the item whose partition key is pk. The result is
// self-contained: Open needs only it and the same pk.
func (e *Envelope) Seal(ctx context.Context, pk string, plaintext []byte) ([]byte, error) {
	if pk == "" {
		return nil, errors.New("tokencrypt: seal: empty context")
	}
	plain, encrypted, err := e.dataKey(ctx, pk)
	if err != nil {
		return nil, fmt.Errorf("tokencrypt: seal: %w", err)
	}
	aead, err := gcm(plain)
	if err != nil {
		return nil, fmt.Errorf("tokencrypt: seal: %w", err)
	}
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(encrypted)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, version)
	out = binary.AppendUvarint(out, uint64(len(encrypted)))
	out = append(out, encrypted...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("tokencrypt: seal: nonce: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, additional(pk)), nil
}

// Open decrypts a value Seal produced for pk. Errors wrap ErrMalformed, ErrOpen, or the KMS
// error when KMS could not be asked.
func (e *Envelope) Open(ctx context.Context, pk string, sealed []byte) ([]byte, error) {
	encrypted, nonce, ciphertext, err := split(sealed)
	if err != nil {
		return nil, err
	}
	plain, err := e.openKey(ctx, pk, encrypted)
	if err != nil {
		return nil, fmt.Errorf("tokencrypt: open: %w", err)
	}
	aead, err := gcm(plain)
	if err != nil {
		return nil, fmt.Errorf("tokencrypt: open: %w", err)
	}
	out, err := aead.Open(nil, nonce, ciphertext, additional(pk))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrOpen)
	}
	return out, nil
}

// IsSealed reports whether b looks like a value Seal produced (its version and layout), without
// opening it.
func IsSealed(b []byte) bool {
	_, _, _, err := split(b)
	return err == nil
}

func split(b []byte) (encrypted, nonce, ciphertext []byte, err error) {
	if len(b) == 0 || b[0] != version {
		return nil, nil, nil, fmt.Errorf("%w: unknown version", ErrMalformed)
	}
	n, w := binary.Uvarint(b[1:])
	if w <= 0 || n == 0 || n > uint64(len(b)) {
		return nil, nil, nil, fmt.Errorf("%w: bad key length", ErrMalformed)
	}
	rest := b[1+w:]
	const nonceSize, tagSize = 12, 16
	if uint64(len(rest)) < n+nonceSize+tagSize {
		return nil, nil, nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	return rest[:n], rest[n : n+nonceSize], rest[n+nonceSize:], nil
}

func additional(pk string) []byte { return []byte("pdkit-token-v1\x00" + pk) }

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func encryptionContext(pk string) map[string]string { return map[string]string{ContextKey: pk} }

// dataKey returns the data key to seal pk's values with: the cached one while it is fresh and
// has uses left, else a new one from GenerateDataKey (also remembered for Open).
func (e *Envelope) dataKey(ctx context.Context, pk string) (plain, encrypted []byte, err error) {
	now := e.now()
	e.mu.Lock()
	if k := e.sealer[pk]; k != nil && now.Before(k.until) && k.uses < e.maxUses() {
		k.uses++
		e.mu.Unlock()
		return k.plain, k.encrypted, nil
	}
	e.mu.Unlock()

	e.stats.generate.Add(1)
	out, err := e.KMS.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(e.KeyID),
		KeySpec:           kmstypes.DataKeySpecAes256,
		EncryptionContext: encryptionContext(pk),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("generate data key: %w", err)
	}
	if len(out.Plaintext) != 32 || len(out.CiphertextBlob) == 0 {
		return nil, nil, errors.New("generate data key: unexpected answer")
	}
	until := now.Add(e.maxAge())
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sealer == nil {
		e.sealer = map[string]*sealKey{}
	}
	evict(e.sealer, now, e.maxEntries(), func(k *sealKey) time.Time { return k.until })
	e.sealer[pk] = &sealKey{plain: out.Plaintext, encrypted: out.CiphertextBlob, until: until, uses: 1}
	e.rememberLocked(now, out.CiphertextBlob, out.Plaintext, until)
	return out.Plaintext, out.CiphertextBlob, nil
}

// openKey returns the plaintext of an encrypted data key: cached, or from KMS Decrypt with pk
// as encryption context.
func (e *Envelope) openKey(ctx context.Context, pk string, encrypted []byte) ([]byte, error) {
	now := e.now()
	e.mu.Lock()
	if k, ok := e.opener[string(encrypted)]; ok && now.Before(k.until) {
		e.mu.Unlock()
		return k.plain, nil
	}
	e.mu.Unlock()

	e.stats.decrypt.Add(1)
	out, err := e.KMS.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    bytes.Clone(encrypted),
		KeyId:             aws.String(e.KeyID),
		EncryptionContext: encryptionContext(pk),
	})
	var invalid *kmstypes.InvalidCiphertextException
	var incorrect *kmstypes.IncorrectKeyException
	switch {
	case errors.As(err, &invalid), errors.As(err, &incorrect):
		return nil, fmt.Errorf("%w: %w", ErrOpen, err)
	case err != nil:
		return nil, fmt.Errorf("decrypt data key: %w", err)
	case len(out.Plaintext) != 32:
		return nil, fmt.Errorf("%w: data key of %d bytes", ErrOpen, len(out.Plaintext))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rememberLocked(now, encrypted, out.Plaintext, now.Add(e.maxAge()))
	return out.Plaintext, nil
}

// rememberLocked caches a data key's plaintext by its encrypted blob. The key is bound to its
// context by KMS: the GCM tag over pk still fails for a value moved to another item, since
// the cache is consulted only with the blob found inside the value.
func (e *Envelope) rememberLocked(now time.Time, encrypted, plain []byte, until time.Time) {
	if e.opener == nil {
		e.opener = map[string]openedKey{}
	}
	evict(e.opener, now, e.maxEntries(), func(k openedKey) time.Time { return k.until })
	e.opener[string(encrypted)] = openedKey{plain: plain, until: until}
}

// evict makes room for one more entry: expired entries go first, then the ones that expire
// soonest (the oldest: every entry lives maxAge from when it was cached) until it is under max.
func evict[V any](m map[string]V, now time.Time, max int, until func(V) time.Time) {
	if len(m) < max {
		return
	}
	for k, v := range m {
		if !now.Before(until(v)) {
			delete(m, k)
		}
	}
	for len(m) >= max && len(m) > 0 {
		var oldest string
		var first time.Time
		for k, v := range m {
			if u := until(v); first.IsZero() || u.Before(first) {
				oldest, first = k, u
			}
		}
		delete(m, oldest)
	}
}
