package xmlsig

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// ErrReplay: a signature over the same SignedInfo was accepted before,
// within its replay window.
var ErrReplay = errors.New("xmlsig: signature replayed")

// replayPrefix is the store key prefix of spent message signatures. It is
// one namespace for every door that accepts signed messages (the
// wssecurity policy, the saml policy's holder-of-key and sender-vouches
// message signatures, the STS's signed requests), so that a message
// accepted at one is a replay at every other.
const replayPrefix = "replay:sig:"

// SignedInfoDigest returns the SHA-256 of SignedInfo's exclusive
// canonical form as the successful Verify computed it; ok is false
// before that.
//
// It is the identity of what the signature covers: SignedInfo holds the
// digest of every referenced element and the algorithms, and its
// canonical form does not depend on how the message spells it (attribute
// order, namespace declarations that are not used, quote characters,
// character references, empty-element tags). It depends on nothing
// outside SignedInfo either: not on the SignatureValue's bytes (an ECDSA
// signature (r, s) and its twin (r, n-s) both verify), nor on their base64
// text (line breaks, padding bits), nor on KeyInfo, nor on the envelope
// the signed elements travel in.
func (s *Signature) SignedInfoDigest() (digest [sha256.Size]byte, ok bool) {
	return s.signedInfoDigest, s.verified
}

// ReplayKey returns the store key under which an accepted signature is
// remembered (see Spend); "" before a successful Verify.
func (s *Signature) ReplayKey() string {
	if !s.verified {
		return ""
	}
	return replayPrefix + base64.RawURLEncoding.EncodeToString(s.signedInfoDigest[:])
}

// Spend records the verified signature s in st's replay cache for ttl,
// the time during which the message it signs would still be accepted
// (its Timestamp's freshness window, at least). It returns an error
// wrapping ErrReplay when a signature over the same canonical SignedInfo
// was spent before and has not expired, one wrapping ErrMalformed when s
// has not been verified, and any other error when the store fails (the
// caller must then refuse the message: a replay cache that cannot be
// consulted protects nothing).
//
// Callers spend last, once everything else about the message holds, so
// that a message refused for another reason does not burn the key.
func Spend(ctx context.Context, st store.Store, s *Signature, ttl time.Duration) error {
	key := s.ReplayKey()
	if key == "" {
		return fmt.Errorf("spending a signature that was not verified: %w", ErrMalformed)
	}
	if ttl < time.Second {
		ttl = time.Second
	}
	fresh, err := st.SetNX(ctx, key, []byte{1}, ttl)
	if err != nil {
		return fmt.Errorf("xmlsig: replay cache: %w", err)
	}
	if !fresh {
		return ErrReplay
	}
	return nil
}
