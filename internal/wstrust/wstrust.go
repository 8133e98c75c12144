// Package wstrust holds what both sides of the embedded WS-Trust 1.3 STS
// share: the protocol's names and the state the STS publishes in the
// store for relying parties (its issuer name and signing certificate).
// The STS (internal/sts) writes that state and the `saml` policy reads it;
// neither needs the other's package, so the policy does not depend on the
// STS server.
package wstrust

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/store"
)

// WS-Trust 1.3 names.
const (
	NamespaceWST = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
	base         = NamespaceWST + "/"

	RequestIssue    = base + "Issue"
	RequestRenew    = base + "Renew"
	RequestCancel   = base + "Cancel"
	RequestValidate = base + "Validate"

	KeyTypeBearer    = base + "Bearer"
	KeyTypePublicKey = base + "PublicKey"
	KeyTypeSymmetric = base + "SymmetricKey"

	TokenTypeStatus = base + "RSTR/Status"
	StatusValid     = base + "status/valid"
	StatusInvalid   = base + "status/invalid"
)

// PublishedKey is the store key of the published issuer name and signing
// certificate (public only), for relying parties sharing the store: the
// saml policy's `sts: true` trusts what is published here.
const PublishedKey = "sts:published"

// Published is what the STS publishes in the store for relying parties.
type Published struct {
	Issuer      string `json:"issuer"`
	Certificate []byte `json:"certificate"` // DER
}

// Publish records issuer and cert under PublishedKey, replacing what an
// earlier start published.
func Publish(ctx context.Context, st store.Store, issuer string, cert *x509.Certificate) error {
	raw, err := json.Marshal(Published{Issuer: issuer, Certificate: cert.Raw})
	if err != nil {
		return err
	}
	if err := st.Set(ctx, PublishedKey, raw, 0); err != nil {
		return fmt.Errorf("sts: publishing the certificate: %w", err)
	}
	return nil
}

// LoadPublished reads the published issuer and certificate; ErrNotFound
// from the store when no STS has started on it yet.
func LoadPublished(ctx context.Context, st store.Store) (string, *x509.Certificate, error) {
	raw, err := st.Get(ctx, PublishedKey)
	if err != nil {
		return "", nil, err
	}
	var p Published
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", nil, fmt.Errorf("sts: published certificate is corrupt: %w", err)
	}
	c, err := x509.ParseCertificate(p.Certificate)
	if err != nil {
		return "", nil, fmt.Errorf("sts: published certificate: %w", err)
	}
	return p.Issuer, c, nil
}
