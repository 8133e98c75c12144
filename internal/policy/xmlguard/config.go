package xmlguard

import (
	"encoding/xml"
	"os"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/soap"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

// Config is the xmlguard policy's settings. Every limit is optional and
// defaults to the value shown; none can be switched off.
//
//	xmlguard:
//	  max_bytes: 1MiB
//	  max_depth: 64
//	  max_elements: 10000
//	  max_attributes: 64
//	  max_namespace_decls: 32
//	  max_total_namespace_decls: 512
//	  max_text_bytes: 64KiB
//	  max_attribute_bytes: 8KiB
//	  max_name_bytes: 256
//	  roundtrip_check: false
//	  soap:
//	    operations: ["{urn:gatehouse:demo:products}GetProduct"]
//	    # or: wsdl: products.wsdl
//	    require_action_match: true
//	    versions: ["1.1"]
//
// See docs/policies/xmlguard.md.
type Config struct {
	// MaxBytes caps the body; a larger one is refused with 413 before it
	// is read in full.
	MaxBytes config.ByteSize `yaml:"max_bytes"`
	// MaxDepth caps element nesting; the root is depth 1.
	MaxDepth int `yaml:"max_depth"`
	// MaxElements caps the elements, comments and CDATA sections.
	MaxElements int `yaml:"max_elements"`
	// MaxAttributes caps the attributes of one element, namespace
	// declarations included.
	MaxAttributes int `yaml:"max_attributes"`
	// MaxNamespaceDecls caps the namespace declarations of one element.
	MaxNamespaceDecls int `yaml:"max_namespace_decls"`
	// MaxTotalNamespaceDecls caps the namespace declarations of the
	// document.
	MaxTotalNamespaceDecls int `yaml:"max_total_namespace_decls"`
	// MaxTextBytes caps a run of text between two tags, and a comment.
	MaxTextBytes config.ByteSize `yaml:"max_text_bytes"`
	// MaxAttributeBytes caps one attribute value.
	MaxAttributeBytes config.ByteSize `yaml:"max_attribute_bytes"`
	// MaxNameBytes caps an element or attribute name, prefix included.
	MaxNameBytes int `yaml:"max_name_bytes"`
	// RoundTripCheck adds xml-roundtrip-validator's check of every
	// element (see xmlscan.Limits.RoundTripCheck): about three times the
	// scan's cost for no case known to the tests.
	RoundTripCheck bool `yaml:"roundtrip_check"`
	// SOAP configures the SOAP checks. Only on SOAP routes, which get the
	// envelope checks whether or not it is given.
	SOAP *SOAPConfig `yaml:"soap"`
}

// SOAPConfig is the operation allow-list of a SOAP route.
type SOAPConfig struct {
	// Operations lists the allowed operations as the qualified names of
	// the Body's child element, in Clark notation:
	// "{urn:example}GetProduct" ("GetProduct" for an unqualified one).
	Operations []string `yaml:"operations"`
	// WSDL is a WSDL 1.1 file (relative to the config file) whose SOAP
	// bindings give the allowed operations and their soapActions. It is
	// read at load. Exclusive with Operations.
	WSDL string `yaml:"wsdl"`
	// RequireActionMatch requires the SOAPAction (1.1) or action parameter
	// (1.2) to be the WSDL's soapAction of the operation in the Body.
	// Needs WSDL; default true when WSDL is given.
	RequireActionMatch *bool `yaml:"require_action_match"`
	// Versions lists the SOAP versions accepted, "1.1" and/or "1.2".
	// Default: the route's own version.
	Versions []string `yaml:"versions"`
}

// Upper bounds of the limits: past these a limit protects nothing.
const (
	maxMaxBytes = 64 << 20
	maxMaxDepth = 1024 // etree's own ceiling
	maxCount    = 1_000_000
)

// settings is a validated Config.
type settings struct {
	lim  xmlscan.Limits
	soap *soapSettings // nil on REST routes
}

type soapSettings struct {
	versions [3]bool // indexed by soap.Version
	// ops, when not nil, is the allow-list: per version (0 for a list
	// that applies to both), the operation's soapActions.
	ops         map[opKey][]string
	matchAction bool
}

type opKey struct {
	version soap.Version
	name    xml.Name
}

func decode(cfg *config.Node, env *policy.Env) (*settings, error) {
	c := Config{
		MaxBytes:               xmlscan.DefaultMaxBytes,
		MaxDepth:               xmlscan.DefaultMaxDepth,
		MaxElements:            xmlscan.DefaultMaxElements,
		MaxAttributes:          xmlscan.DefaultMaxAttributes,
		MaxNamespaceDecls:      xmlscan.DefaultMaxNamespaceDecls,
		MaxTotalNamespaceDecls: xmlscan.DefaultMaxTotalNamespaceDecls,
		MaxTextBytes:           xmlscan.DefaultMaxTextBytes,
		MaxAttributeBytes:      xmlscan.DefaultMaxAttributeBytes,
		MaxNameBytes:           xmlscan.DefaultMaxNameBytes,
	}
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.validate(cfg, env.Route); err != nil {
		return nil, err
	}
	return c.provision(cfg, env.Route.Protocol)
}

// validate checks a defaulted c for a route, reporting every independent
// problem at its place. It does not read the WSDL.
func (c *Config) validate(cfg *config.Node, route policy.Route) error {
	var p config.Problems
	checks := []struct {
		field    string
		v, upper int64
	}{
		{"max_bytes", c.MaxBytes.Bytes(), maxMaxBytes},
		{"max_depth", int64(c.MaxDepth), maxMaxDepth},
		{"max_elements", int64(c.MaxElements), maxCount},
		{"max_attributes", int64(c.MaxAttributes), maxCount},
		{"max_namespace_decls", int64(c.MaxNamespaceDecls), maxCount},
		{"max_total_namespace_decls", int64(c.MaxTotalNamespaceDecls), maxCount},
		{"max_text_bytes", c.MaxTextBytes.Bytes(), maxMaxBytes},
		{"max_attribute_bytes", c.MaxAttributeBytes.Bytes(), maxMaxBytes},
		{"max_name_bytes", int64(c.MaxNameBytes), 64 << 10},
	}
	for _, ch := range checks {
		if ch.v <= 0 {
			p.Errorf(cfg, ch.field, "must be greater than 0")
		} else if ch.v > ch.upper {
			p.Errorf(cfg, ch.field, "must be at most %d", ch.upper)
		}
	}
	if c.MaxNamespaceDecls > c.MaxAttributes {
		p.Errorf(cfg, "max_namespace_decls", "must not exceed max_attributes (%d): declarations are attributes", c.MaxAttributes)
	}
	if route.Protocol == policy.REST {
		if c.SOAP != nil {
			p.Errorf(cfg, "soap", "soap checks need a SOAP route (soap: \"1.1\" or \"1.2\" on route %q)", route.Name)
		}
		return p.Err()
	}
	sc := c.SOAP
	if sc == nil {
		sc = &SOAPConfig{}
	}
	for i, v := range sc.Versions {
		if v != "1.1" && v != "1.2" {
			p.Errorf(cfg, config.Index("soap.versions", i), "unknown SOAP version %q; want \"1.1\" or \"1.2\"", v)
		}
	}
	if len(sc.Operations) > 0 && sc.WSDL != "" {
		p.Errorf(cfg, "soap.wsdl", "give operations or wsdl, not both")
	}
	if sc.RequireActionMatch != nil && *sc.RequireActionMatch && sc.WSDL == "" {
		p.Errorf(cfg, "soap.require_action_match", "needs wsdl: the soapActions come from the WSDL")
	}
	if sc.Operations != nil && len(sc.Operations) == 0 {
		p.Errorf(cfg, "soap.operations", "an empty list would refuse every request; leave it out to allow any operation")
	}
	for i, o := range sc.Operations {
		if _, ok := soap.ParseQName(o); !ok {
			p.Errorf(cfg, config.Index("soap.operations", i), "%q is not a qualified name like {urn:example}Operation", o)
		}
	}
	return p.Err()
}

// provision builds the settings of a validated c; on a SOAP route it
// reads the WSDL (relative to cfg's file).
func (c *Config) provision(cfg *config.Node, route policy.Protocol) (*settings, error) {
	s := &settings{lim: xmlscan.Limits{
		MaxBytes:               c.MaxBytes.Bytes(),
		MaxDepth:               c.MaxDepth,
		MaxElements:            c.MaxElements,
		MaxAttributes:          c.MaxAttributes,
		MaxNamespaceDecls:      c.MaxNamespaceDecls,
		MaxTotalNamespaceDecls: c.MaxTotalNamespaceDecls,
		MaxTextBytes:           int(c.MaxTextBytes.Bytes()),
		MaxAttributeBytes:      int(c.MaxAttributeBytes.Bytes()),
		MaxNameBytes:           c.MaxNameBytes,
		RoundTripCheck:         c.RoundTripCheck,
	}}
	if route == policy.REST {
		return s, nil
	}
	var err error
	if s.soap, err = provisionSOAP(cfg, c.SOAP, route); err != nil {
		return nil, err
	}
	return s, nil
}

// provisionSOAP builds the SOAP settings of a validated c.
func provisionSOAP(cfg *config.Node, c *SOAPConfig, route policy.Protocol) (*soapSettings, error) {
	ss := &soapSettings{}
	if c == nil {
		c = &SOAPConfig{}
	}
	if len(c.Versions) == 0 {
		if route == policy.SOAP12 {
			ss.versions[soap.V12] = true
		} else {
			ss.versions[soap.V11] = true
		}
	}
	for _, v := range c.Versions {
		switch v {
		case "1.1":
			ss.versions[soap.V11] = true
		case "1.2":
			ss.versions[soap.V12] = true
		}
	}
	switch {
	case c.Operations != nil:
		ss.ops = make(map[opKey][]string, len(c.Operations))
		for _, o := range c.Operations {
			n, _ := soap.ParseQName(o) // validated
			ss.ops[opKey{name: n}] = nil
		}
	case c.WSDL != "":
		data, err := os.ReadFile(cfg.ResolvePath(c.WSDL))
		if err != nil {
			return nil, cfg.Errorf("soap.wsdl", "reading the WSDL: %v", err)
		}
		wops, err := soap.ParseWSDL(data)
		if err != nil {
			return nil, cfg.Errorf("soap.wsdl", "%s: %v", c.WSDL, err)
		}
		ss.ops = make(map[opKey][]string, len(wops))
		for _, op := range wops {
			if !ss.versions[op.Version] {
				continue
			}
			k := opKey{version: op.Version, name: op.Element}
			ss.ops[k] = append(ss.ops[k], op.Action)
		}
		if len(ss.ops) == 0 {
			return nil, cfg.Errorf("soap.wsdl", "%s has no operation bound for SOAP %s", c.WSDL, versionList(ss.versions))
		}
		ss.matchAction = c.RequireActionMatch == nil || *c.RequireActionMatch
	}
	return ss, nil
}

func versionList(v [3]bool) string {
	switch {
	case v[soap.V11] && v[soap.V12]:
		return "1.1 or 1.2"
	case v[soap.V12]:
		return "1.2"
	default:
		return "1.1"
	}
}
