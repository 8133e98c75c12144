package authserver

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Store keys of the authorization server's state.
const (
	keyringKey     = "authserver:keys"
	keyringLockKey = "authserver:keys:lock"
	revokedPrefix  = "authserver:revoked:"
	assertionPref  = "authserver:jti:"
	failIPPrefix   = "authserver:fail:ip:"
	failClientPref = "authserver:fail:client:"
	// RevocationChannel is the store channel on which revocations are
	// published to every gateway instance: "JTI UNIXEXP".
	RevocationChannel = "authserver:revocations"
)

// storedKey is one signing key as kept in the store. The key id, algorithm
// and times are in clear; the private key (PKCS#8) is sealed with
// AES-256-GCM under the key-encryption key, with those clear fields as
// additional data so that they cannot be swapped between keys.
type storedKey struct {
	KID     string    `json:"kid"`
	Alg     string    `json:"alg"`
	Created time.Time `json:"created"`
	// Activated is when the key began to sign; zero for the next key,
	// published ahead so that relying parties know it before it is used.
	Activated time.Time `json:"activated,omitzero"`
	// Retired is when the key stopped signing; it stays published until
	// the tokens it signed have expired.
	Retired time.Time `json:"retired,omitzero"`
	Nonce   []byte    `json:"nonce,omitempty"`
	Sealed  []byte    `json:"sealed,omitempty"`
	Plain   []byte    `json:"plain,omitempty"` // insecure_plaintext_keys only
}

type storedRing struct {
	Keys []storedKey `json:"keys"`
}

// keyring is the loaded signing keys. The signing key and the published
// set are swapped together under mu.
type keyring struct {
	st       store.Store
	kek      []byte
	alg      string
	rotation time.Duration
	keep     time.Duration // how long a retired key stays published
	now      func() time.Time
	// rotated is called after each rotation this keyring made; never nil
	// once built by New.
	rotated func(scheduled bool)

	mu        sync.RWMutex
	raw       []byte // the stored document last loaded
	active    *keys.Key
	activated time.Time
	published map[string]*keys.Key
	jwks      []byte
}

func (kr *keyring) aad(k *storedKey) []byte {
	return []byte("gatehouse-authserver-key\x00" + k.KID + "\x00" + k.Alg + "\x00" + k.Created.UTC().Format(time.RFC3339Nano))
}

func (kr *keyring) seal(k *keys.Key, created time.Time) (storedKey, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Signer())
	if err != nil {
		return storedKey{}, fmt.Errorf("authserver: %w", err)
	}
	sk := storedKey{KID: k.KeyID(), Alg: k.Algorithm(), Created: created.UTC()}
	if kr.kek == nil {
		sk.Plain = der
		return sk, nil
	}
	gcm, err := kr.gcm()
	if err != nil {
		return storedKey{}, err
	}
	sk.Nonce = make([]byte, gcm.NonceSize())
	if _, err := rand.Read(sk.Nonce); err != nil {
		return storedKey{}, fmt.Errorf("authserver: %w", err)
	}
	sk.Sealed = gcm.Seal(nil, sk.Nonce, der, kr.aad(&sk))
	return sk, nil
}

func (kr *keyring) gcm() (cipher.AEAD, error) {
	block, err := aes.NewCipher(kr.kek)
	if err != nil {
		return nil, fmt.Errorf("authserver: %w", err)
	}
	return cipher.NewGCM(block)
}

// ErrKeyDecrypt is the cause of a start failure on a stored key that the
// configured key-encryption key does not open.
var ErrKeyDecrypt = errors.New("authserver: cannot decrypt a stored signing key (wrong key_encryption_key?)")

func (kr *keyring) open(sk *storedKey) (*keys.Key, error) {
	var der []byte
	switch {
	case sk.Sealed != nil:
		if kr.kek == nil {
			return nil, fmt.Errorf("authserver: key %s is encrypted and no key_encryption_key is configured: %w", sk.KID, ErrKeyDecrypt)
		}
		gcm, err := kr.gcm()
		if err != nil {
			return nil, err
		}
		if der, err = gcm.Open(nil, sk.Nonce, sk.Sealed, kr.aad(sk)); err != nil {
			return nil, fmt.Errorf("authserver: key %s: %w", sk.KID, ErrKeyDecrypt)
		}
	case kr.kek != nil:
		// Refused rather than silently trusted: a plaintext key in a store
		// that should hold only sealed ones may have been planted.
		return nil, fmt.Errorf("authserver: key %s is stored in plain text but key_encryption_key is set; rotate it out with insecure_plaintext_keys or clear the store", sk.KID)
	default:
		der = sk.Plain
	}
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("authserver: key %s: %w", sk.KID, err)
	}
	signer, ok := raw.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("authserver: key %s is not a signing key", sk.KID)
	}
	return keys.New(signer, sk.Alg, sk.KID)
}

func (kr *keyring) newKey(now time.Time) (storedKey, error) {
	k, err := keys.Generate(kr.alg)
	if err != nil {
		return storedKey{}, fmt.Errorf("authserver: %w", err)
	}
	return kr.seal(k, now)
}

// get reads the stored ring; ok false when there is none.
func (kr *keyring) get(ctx context.Context) (*storedRing, []byte, bool, error) {
	raw, err := kr.st.Get(ctx, keyringKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("authserver: reading the signing keys: %w", err)
	}
	var r storedRing
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, nil, false, fmt.Errorf("authserver: the stored signing keys are corrupt: %w", err)
	}
	return &r, raw, true, nil
}

// ensure loads the keys, making them on first start. Several instances
// starting at once agree through SetNX: the first ring stored wins.
func (kr *keyring) ensure(ctx context.Context) error {
	r, raw, ok, err := kr.get(ctx)
	if err != nil {
		return err
	}
	if !ok {
		now := kr.now()
		active, err := kr.newKey(now)
		if err != nil {
			return err
		}
		active.Activated = now.UTC()
		next, err := kr.newKey(now)
		if err != nil {
			return err
		}
		r = &storedRing{Keys: []storedKey{active, next}}
		raw, err = json.Marshal(r)
		if err != nil {
			return fmt.Errorf("authserver: %w", err)
		}
		stored, err := kr.st.SetNX(ctx, keyringKey, raw, 0)
		if err != nil {
			return fmt.Errorf("authserver: storing the signing keys: %w", err)
		}
		if !stored {
			return kr.ensure(ctx)
		}
	}
	if err := kr.load(r, raw); err != nil {
		return err
	}
	// A changed algorithm takes effect at once, with a new key.
	if kr.activeAlg() != kr.alg {
		return kr.rotate(ctx, false)
	}
	return nil
}

func (kr *keyring) activeAlg() string {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	if kr.active == nil {
		return ""
	}
	return kr.active.Algorithm()
}

// load makes r the keys in use. Keys retired longer ago than keep are
// dropped from the published set.
func (kr *keyring) load(r *storedRing, raw []byte) error {
	kr.mu.RLock()
	same := bytes.Equal(raw, kr.raw)
	kr.mu.RUnlock()
	if same {
		return nil
	}
	now := kr.now()
	var active *keys.Key
	var activated time.Time
	published := make(map[string]*keys.Key, len(r.Keys))
	var order []*keys.Key
	for i := range r.Keys {
		sk := &r.Keys[i]
		if !sk.Retired.IsZero() && now.Sub(sk.Retired) > kr.keep {
			continue
		}
		k, err := kr.open(sk)
		if err != nil {
			return err
		}
		published[k.KeyID()] = k
		order = append(order, k)
		if sk.Retired.IsZero() && !sk.Activated.IsZero() && (active == nil || sk.Activated.After(activated)) {
			active, activated = k, sk.Activated
		}
	}
	if active == nil {
		return errors.New("authserver: the stored signing keys have no active key")
	}
	jwks, err := keys.JWKS(order...)
	if err != nil {
		return fmt.Errorf("authserver: %w", err)
	}
	kr.mu.Lock()
	kr.raw, kr.active, kr.activated, kr.published, kr.jwks = raw, active, activated, published, jwks
	kr.mu.Unlock()
	return nil
}

// refresh reloads the stored ring (rotated by another instance) and
// rotates when the active key is due.
func (kr *keyring) refresh(ctx context.Context) error {
	r, raw, ok, err := kr.get(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return kr.ensure(ctx)
	}
	if err := kr.load(r, raw); err != nil {
		return err
	}
	kr.mu.RLock()
	due := kr.now().Sub(kr.activated) >= kr.rotation
	kr.mu.RUnlock()
	if due {
		if err := kr.rotate(ctx, true); err != nil && !errors.Is(err, ErrRotating) {
			return err
		}
	}
	return nil
}

// ErrRotating is returned by Rotate while another rotation holds the lock.
var ErrRotating = errors.New("authserver: another rotation is in progress")

// rotate retires the active key, activates the next one (unless it is of
// another algorithm than configured) and makes a new next key, holding a
// store lock so that instances do not rotate twice. scheduled rotations
// re-check under the lock that the active key is still due.
func (kr *keyring) rotate(ctx context.Context, scheduled bool) error {
	ok, err := kr.st.SetNX(ctx, keyringLockKey, []byte("1"), 30*time.Second)
	if err != nil {
		return fmt.Errorf("authserver: rotation lock: %w", err)
	}
	if !ok {
		return ErrRotating
	}
	defer kr.st.Delete(context.WithoutCancel(ctx), keyringLockKey)
	r, _, found, err := kr.get(ctx)
	if err != nil {
		return err
	}
	if !found {
		return errors.New("authserver: no signing keys to rotate")
	}
	now := kr.now().UTC()
	// Rotation under the lock re-checks the schedule: another instance
	// may have rotated between our check and the lock.
	if scheduled {
		for _, k := range r.Keys {
			if k.Retired.IsZero() && !k.Activated.IsZero() && now.Sub(k.Activated) < kr.rotation {
				return kr.load(r, mustJSON(r))
			}
		}
	}
	var keep []storedKey
	promoted := false
	for _, k := range r.Keys {
		switch {
		case !k.Retired.IsZero():
			if now.Sub(k.Retired) > kr.keep {
				continue // its tokens have all expired
			}
		case !k.Activated.IsZero():
			k.Retired = now
		default: // the next key
			if k.Alg != kr.alg {
				continue
			}
			k.Activated = now
			promoted = true
		}
		keep = append(keep, k)
	}
	if !promoted {
		k, err := kr.newKey(now)
		if err != nil {
			return err
		}
		k.Activated = now
		keep = append(keep, k)
	}
	next, err := kr.newKey(now)
	if err != nil {
		return err
	}
	keep = append(keep, next)
	slices.SortStableFunc(keep, func(a, b storedKey) int { return a.Created.Compare(b.Created) })
	r = &storedRing{Keys: keep}
	raw := mustJSON(r)
	if err := kr.st.Set(ctx, keyringKey, raw, 0); err != nil {
		return fmt.Errorf("authserver: storing the rotated keys: %w", err)
	}
	kr.rotated(scheduled)
	return kr.load(r, raw)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled
	}
	return b
}

// signing returns the active key.
func (kr *keyring) signing() *keys.Key {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.active
}

// key returns the published key with kid.
func (kr *keyring) key(kid string) (*keys.Key, bool) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	k, ok := kr.published[kid]
	return k, ok
}

// jwksJSON returns the published JWK Set.
func (kr *keyring) jwksJSON() []byte {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.jwks
}
