package dlp

import (
	"cmp"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the dlp policy's settings. Each detector is off unless given;
// its action is mask unless said otherwise.
//
//	dlp:
//	  credit_cards: {action: mask, iin: true}
//	  ibans: {action: block}
//	  national_ids: {action: log, kinds: [us_ssn, uk_nino]}
//	  private_keys: {action: block}
//	  access_tokens: {action: mask, kinds: [jwt, aws, github, slack]}
//	  custom:
//	    - {name: employee_id, pattern: 'EMP-[0-9]{6}', action: mask, max_length: 16}
//	  content_types: [application/json, +json, application/xml, +xml, text/*, application/javascript]
//	  max_buffer: 1MiB
//	  oversize: block
type Config struct {
	// CreditCards finds 13 to 19 digit numbers (optionally grouped with
	// spaces or dashes) passing the Luhn check.
	CreditCards *CardConfig `yaml:"credit_cards"`
	// IBANs finds IBANs with their country's length and valid check digits.
	IBANs *DetectorConfig `yaml:"ibans"`
	// NationalIDs finds national identity numbers of the listed kinds.
	NationalIDs *KindsConfig `yaml:"national_ids"`
	// PrivateKeys finds PEM private key blocks.
	PrivateKeys *DetectorConfig `yaml:"private_keys"`
	// AccessTokens finds bearer tokens and API keys of the listed kinds.
	AccessTokens *KindsConfig `yaml:"access_tokens"`
	// Custom are named RE2 patterns.
	Custom []CustomConfig `yaml:"custom"`
	// ContentTypes are the response media types scanned: "type/subtype",
	// "type/*" or a structured syntax suffix "+json", matched without
	// regard to case or parameters. A response without Content-Type, or
	// with one that is not type/subtype, is scanned, and so is one with
	// several values of which one is scanned. Default: every type but the
	// binary media image/*, audio/*, video/* and font/* (their +xml and
	// +json types, image/svg+xml say, are scanned): text/*, JSON, XML,
	// JavaScript and JSON-P, forms, application/octet-stream alike.
	ContentTypes []string `yaml:"content_types"`
	// MaxBuffer is how much of a response is held back, when a detector
	// blocks, before its status is sent. Default 1MiB.
	MaxBuffer config.ByteSize `yaml:"max_buffer"`
	// Oversize is what happens to a response larger than MaxBuffer when a
	// detector blocks: "block" (default) refuses it with 502, "mask" sends
	// what was held and masks, instead of blocking, what follows.
	Oversize string `yaml:"oversize"`
}

// DetectorConfig is a detector's action: mask (default), block or log.
type DetectorConfig struct {
	Action string `yaml:"action"`
}

// CardConfig configures the credit card detector.
type CardConfig struct {
	Action string `yaml:"action"`
	// IIN also requires a major network's issuer prefix and length (Visa,
	// Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro).
	IIN bool `yaml:"iin"`
}

// KindsConfig is a family of detectors with one action.
type KindsConfig struct {
	Action string `yaml:"action"`
	// Kinds lists the detectors of the family to run; empty means all.
	Kinds []string `yaml:"kinds"`
}

// CustomConfig is a custom pattern.
type CustomConfig struct {
	// Name labels findings in logs and metrics.
	Name string `yaml:"name"`
	// Pattern is a Go (RE2) regular expression: matching is linear time.
	Pattern string `yaml:"pattern"`
	Action  string `yaml:"action"`
	// MaxLength caps a match's length; it is also how far the stream is
	// held back for this pattern. Default 256, at most 64KiB.
	MaxLength int `yaml:"max_length"`
}

// action is what is done with a finding.
type action uint8

const (
	actMask action = iota
	actBlock
	actLog
)

var actionNames = [...]string{actMask: "mask", actBlock: "block", actLog: "log"}

func (a action) String() string { return actionNames[a] }

func parseAction(cfg *config.Node, field, s string) (action, error) {
	switch s {
	case "", "mask":
		return actMask, nil
	case "block":
		return actBlock, nil
	case "log":
		return actLog, nil
	}
	return 0, cfg.Errorf(field, "dlp: action %q is not mask, block or log", s)
}

const (
	defaultMaxBuffer = 1 << 20
	defaultCustomLen = 256
	maxCustomLen     = 64 << 10
	// pemMaxLen bounds a private key block: a 4096-bit RSA key in PKCS#8
	// PEM is about 3.3KB, twice that JSON-escaped.
	pemMaxLen = 8 << 10
)

// settings is a validated Config.
type settings struct {
	dets      []*detector
	types     []string // nil: all but binary media (see Config.ContentTypes)
	maxBuffer int
	oversize  action // actBlock or actMask
}

// rawConfig is Config with the detectors as raw nodes, so that a detector
// given without settings (`credit_cards:`, YAML null) is on with its
// defaults rather than silently off.
type rawConfig struct {
	CreditCards  *config.Node    `yaml:"credit_cards"`
	IBANs        *config.Node    `yaml:"ibans"`
	NationalIDs  *config.Node    `yaml:"national_ids"`
	PrivateKeys  *config.Node    `yaml:"private_keys"`
	AccessTokens *config.Node    `yaml:"access_tokens"`
	Custom       []CustomConfig  `yaml:"custom"`
	ContentTypes []string        `yaml:"content_types"`
	MaxBuffer    config.ByteSize `yaml:"max_buffer"`
	Oversize     string          `yaml:"oversize"`
}

func decodeInto[T any](n *config.Node, errp *error) *T {
	if n == nil || *errp != nil {
		return nil
	}
	v := new(T)
	*errp = n.Decode(v)
	return v
}

// decode builds the policy's settings from cfg: decodeConfig, validate,
// provision.
func decode(cfg *config.Node) (*settings, error) {
	c, err := decodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(), nil
}

// decodeConfig decodes cfg strictly into a Config; a detector given
// without settings is on with its defaults.
func decodeConfig(cfg *config.Node) (*Config, error) {
	var raw rawConfig
	if err := cfg.Decode(&raw); err != nil {
		return nil, err
	}
	var err error
	c := &Config{
		CreditCards:  decodeInto[CardConfig](raw.CreditCards, &err),
		IBANs:        decodeInto[DetectorConfig](raw.IBANs, &err),
		NationalIDs:  decodeInto[KindsConfig](raw.NationalIDs, &err),
		PrivateKeys:  decodeInto[DetectorConfig](raw.PrivateKeys, &err),
		AccessTokens: decodeInto[KindsConfig](raw.AccessTokens, &err),
		Custom:       raw.Custom,
		ContentTypes: raw.ContentTypes,
		MaxBuffer:    raw.MaxBuffer,
		Oversize:     raw.Oversize,
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// The kinds of the detector families, in the order they run, with the name
// each kind's findings are labelled with.
var (
	nationalIDKinds  = []string{"us_ssn", "uk_nino"}
	accessTokenKinds = []string{"jwt", "aws", "github", "slack"}
	kindNames        = map[string]string{
		"us_ssn": "us_ssn", "uk_nino": "uk_nino",
		"jwt": "jwt", "aws": "aws_access_key", "github": "github_token", "slack": "slack_token",
	}
)

// validate checks c, reporting every independent problem at its place in
// cfg. It does no I/O and builds nothing that provision needs.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	names := map[string]bool{}
	action := func(field, act string) { _, err := parseAction(cfg, field+".action", act); p.Add(err) }
	if c.CreditCards != nil {
		action("credit_cards", c.CreditCards.Action)
		names["credit_card"] = true
	}
	if c.IBANs != nil {
		action("ibans", c.IBANs.Action)
		names["iban"] = true
	}
	if c.NationalIDs != nil {
		action("national_ids", c.NationalIDs.Action)
		validateKinds(&p, cfg, "national_ids", c.NationalIDs, nationalIDKinds, names)
	}
	if c.PrivateKeys != nil {
		action("private_keys", c.PrivateKeys.Action)
		names["private_key"] = true
	}
	if c.AccessTokens != nil {
		action("access_tokens", c.AccessTokens.Action)
		validateKinds(&p, cfg, "access_tokens", c.AccessTokens, accessTokenKinds, names)
	}
	for i, cc := range c.Custom {
		field := config.Index("custom", i)
		action(field, cc.Action)
		switch {
		case cc.Name == "":
			p.Errorf(cfg, field, "dlp: a custom pattern needs a name")
		case names[cc.Name]:
			p.Errorf(cfg, field+".name", "dlp: detector name %q is used twice", cc.Name)
		}
		names[cc.Name] = true
		if cc.Pattern == "" {
			p.Errorf(cfg, field, "dlp: a custom pattern needs a pattern")
		} else if _, err := regexp.Compile(cc.Pattern); err != nil {
			p.Errorf(cfg, field+".pattern", "dlp: %v", err)
		}
		if cc.MaxLength < 0 || cc.MaxLength > maxCustomLen {
			p.Errorf(cfg, field+".max_length", "dlp: max_length must be between 1 and %d", maxCustomLen)
		}
	}
	if c.CreditCards == nil && c.IBANs == nil && c.NationalIDs == nil && c.PrivateKeys == nil && c.AccessTokens == nil && len(c.Custom) == 0 {
		p.Errorf(cfg, "", "dlp: no detector configured: give credit_cards, ibans, national_ids, private_keys, access_tokens or custom")
	}
	if c.ContentTypes != nil && len(c.ContentTypes) == 0 {
		p.Errorf(cfg, "content_types", "dlp: an empty list scans nothing; leave it out for the default")
	}
	for i, t := range c.ContentTypes {
		if !validTypePattern(strings.ToLower(strings.TrimSpace(t))) {
			p.Errorf(cfg, config.Index("content_types", i), "dlp: %q is not type/subtype, type/* or +suffix", t)
		}
	}
	if c.MaxBuffer != 0 && (c.MaxBuffer < 1024 || c.MaxBuffer > 64<<20) {
		p.Errorf(cfg, "max_buffer", "dlp: max_buffer must be between 1KiB and 64MiB")
	}
	switch c.Oversize {
	case "", "block", "mask":
	default:
		p.Errorf(cfg, "oversize", "dlp: oversize %q is not block or mask", c.Oversize)
	}
	return p.Err()
}

// list returns the kinds to run: Kinds, or all when Kinds is empty.
func (kc *KindsConfig) list(all []string) []string {
	if len(kc.Kinds) == 0 {
		return all
	}
	return kc.Kinds
}

// validateKinds checks a family's kinds list (empty: all) and records the
// names of the detectors it turns on.
func validateKinds(p *config.Problems, cfg *config.Node, field string, kc *KindsConfig, all []string, names map[string]bool) {
	list := kc.list(all)
	seen := map[string]bool{}
	for i, k := range list {
		switch {
		case !slices.Contains(all, k):
			p.Errorf(cfg, config.Index(field+".kinds", i), "dlp: unknown kind %q; known: %s", k, strings.Join(all, ", "))
		case seen[k]:
			p.Errorf(cfg, config.Index(field+".kinds", i), "dlp: kind %q is listed twice", k)
		}
		seen[k] = true
		names[kindNames[k]] = true
	}
}

// provision builds the detectors and settings of a validated c.
func (c *Config) provision() *settings {
	s := &settings{maxBuffer: defaultMaxBuffer, oversize: actBlock}
	add := func(act string, d *detector) {
		d.action, _ = parseAction(nil, "", act) // validated
		s.dets = append(s.dets, d)
	}
	if c.CreditCards != nil {
		add(c.CreditCards.Action, &detector{name: "credit_card", maxLen: cardMaxLen, scan: scanCards(c.CreditCards.IIN), mask: maskCard})
	}
	if c.IBANs != nil {
		add(c.IBANs.Action, &detector{name: "iban", maxLen: ibanMaxLen, scan: scanIBANs, mask: maskKeepLast4})
	}
	if c.NationalIDs != nil {
		kinds := map[string]*detector{
			"us_ssn":  {name: "us_ssn", maxLen: ssnLen, scan: scanSSNs, mask: maskKeepLast4},
			"uk_nino": {name: "uk_nino", maxLen: ninoMaxLen, scan: scanNINOs, mask: maskKeepLast4},
		}
		for _, k := range c.NationalIDs.list(nationalIDKinds) {
			add(c.NationalIDs.Action, kinds[k])
		}
	}
	if c.PrivateKeys != nil {
		add(c.PrivateKeys.Action, &detector{name: "private_key", maxLen: pemMaxLen, scan: scanPrivateKeys(pemMaxLen), mask: maskPEM})
	}
	if c.AccessTokens != nil {
		kinds := map[string]*detector{
			"jwt":    {name: "jwt", maxLen: jwtMaxLen, scan: scanJWTs, mask: maskAllButDots},
			"aws":    {name: "aws_access_key", maxLen: formatsMaxLen(awsFormats), scan: scanKeys(awsFormats), mask: maskKeepPrefix(awsFormats)},
			"github": {name: "github_token", maxLen: formatsMaxLen(githubFormats), scan: scanKeys(githubFormats), mask: maskKeepPrefix(githubFormats)},
			"slack":  {name: "slack_token", maxLen: formatsMaxLen(slackFormats), scan: scanKeys(slackFormats), mask: maskKeepPrefix(slackFormats)},
		}
		for _, k := range c.AccessTokens.list(accessTokenKinds) {
			add(c.AccessTokens.Action, kinds[k])
		}
	}
	for _, cc := range c.Custom {
		n := cmp.Or(cc.MaxLength, defaultCustomLen)
		re := regexp.MustCompile(cc.Pattern) // validated
		add(cc.Action, &detector{name: cc.Name, maxLen: n, scan: scanRegexp(re, n), mask: maskKeepLast4})
	}
	if c.ContentTypes != nil {
		s.types = make([]string, len(c.ContentTypes))
		for i, t := range c.ContentTypes {
			s.types[i] = strings.ToLower(strings.TrimSpace(t))
		}
	}
	if c.MaxBuffer != 0 {
		s.maxBuffer = int(c.MaxBuffer)
	}
	if c.Oversize == "mask" {
		s.oversize = actMask
	}
	return s
}

func validTypePattern(t string) bool {
	if strings.HasPrefix(t, "+") {
		return len(t) > 1 && !strings.ContainsAny(t[1:], "/+* ;")
	}
	typ, sub, ok := strings.Cut(t, "/")
	return ok && typ != "" && typ != "*" && sub != "" && !strings.ContainsAny(typ, "* ;") &&
		(sub == "*" || !strings.ContainsAny(sub, "* ;"))
}

// scannableHeader reports whether a response with header h is scanned:
// when it has no Content-Type, or one of its values (repeated fields and
// comma lists alike: clients differ on which one counts) is scanned.
func (s *settings) scannableHeader(h http.Header) bool {
	n := 0
	for _, v := range h["Content-Type"] {
		for ct := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(ct) == "" {
				continue
			}
			n++
			if s.scannable(ct) {
				return true
			}
		}
	}
	return n == 0
}

// binaryMedia are the top-level types not scanned by default.
var binaryMedia = []string{"image", "audio", "video", "font"}

// scannable reports whether a response of Content-Type ct is scanned.
func (s *settings) scannable(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" || strings.ContainsAny(mt, " \t\"") {
		// Not a media type: a client sniffs the body; so do we.
		return true
	}
	if s.types == nil {
		return !slices.Contains(binaryMedia, typ) || strings.HasSuffix(sub, "+xml") || strings.HasSuffix(sub, "+json")
	}
	for _, p := range s.types {
		switch {
		case p[0] == '+':
			if strings.HasSuffix(sub, p) {
				return true
			}
		case strings.HasSuffix(p, "/*"):
			if typ == p[:len(p)-2] {
				return true
			}
		case p == mt:
			return true
		}
	}
	return false
}
