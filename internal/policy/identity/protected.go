package identity

import "slices"

// ProtectedHeaders returns the canonical names of the request fields the
// policy sets or strips: its headers, its token's and those of strip. The
// gateway's proxy never lets a client send them as trailers, nor removes
// them because the client's Connection field names them.
func (p *Identity) ProtectedHeaders() []string { return slices.Clone(p.c.protect) }
