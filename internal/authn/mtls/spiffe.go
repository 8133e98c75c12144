package mtls

import (
	"errors"
	"fmt"
	"strings"
)

// maxSPIFFEID is the SPIFFE ID length limit of the SPIFFE-ID spec §2.3.
const maxSPIFFEID = 2048

var errNotSPIFFE = errors.New("mtls: not a spiffe:// URI")

// parseSPIFFEID checks s against the SPIFFE-ID spec (§2): the lowercase
// scheme "spiffe", a trust domain of lowercase letters, digits, '.', '-'
// and '_' with no port or user info, and a path of non-empty segments of
// letters, digits, '.', '-' and '_' other than "." and "..", without a
// trailing slash, query or fragment. It returns the trust domain.
func parseSPIFFEID(s string) (trustDomain string, err error) {
	rest, ok := strings.CutPrefix(s, "spiffe://")
	if !ok {
		return "", errNotSPIFFE
	}
	if len(s) > maxSPIFFEID {
		return "", fmt.Errorf("mtls: SPIFFE ID longer than %d bytes", maxSPIFFEID)
	}
	td, path, hasPath := strings.Cut(rest, "/")
	if err := validTrustDomain(td); err != nil {
		return "", err
	}
	if !hasPath {
		return td, nil
	}
	for seg := range strings.SplitSeq(path, "/") {
		switch seg {
		case "":
			return "", fmt.Errorf("mtls: SPIFFE ID %q has an empty path segment", s)
		case ".", "..":
			return "", fmt.Errorf("mtls: SPIFFE ID %q has a dot path segment", s)
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !(isLowerAlnum(c) || c >= 'A' && c <= 'Z' || c == '.' || c == '-' || c == '_') {
				return "", fmt.Errorf("mtls: SPIFFE ID %q has a bad character in its path", s)
			}
		}
	}
	return td, nil
}

// validTrustDomain checks a SPIFFE trust domain name (SPIFFE-ID §2.1).
func validTrustDomain(td string) error {
	if td == "" {
		return errors.New("mtls: empty SPIFFE trust domain")
	}
	for i := 0; i < len(td); i++ {
		if c := td[i]; !(isLowerAlnum(c) || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("mtls: SPIFFE trust domain %q may only hold lowercase letters, digits, '.', '-' and '_'", td)
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
