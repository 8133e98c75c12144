package dlp

import (
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

func decode(cfg *config.Node) (*settings, error) {
	var raw rawConfig
	if err := cfg.Decode(&raw); err != nil {
		return nil, err
	}
	var err error
	c := Config{
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
	s := &settings{maxBuffer: defaultMaxBuffer, oversize: actBlock}
	add := func(field, act string, d *detector) error {
		a, err := parseAction(cfg, field+".action", act)
		if err != nil {
			return err
		}
		d.action = a
		s.dets = append(s.dets, d)
		return nil
	}
	if c.CreditCards != nil {
		d := &detector{name: "credit_card", maxLen: cardMaxLen, scan: scanCards(c.CreditCards.IIN), mask: maskCard}
		if err := add("credit_cards", c.CreditCards.Action, d); err != nil {
			return nil, err
		}
	}
	if c.IBANs != nil {
		d := &detector{name: "iban", maxLen: ibanMaxLen, scan: scanIBANs, mask: maskKeepLast4}
		if err := add("ibans", c.IBANs.Action, d); err != nil {
			return nil, err
		}
	}
	if c.NationalIDs != nil {
		kinds := map[string]*detector{
			"us_ssn":  {name: "us_ssn", maxLen: ssnLen, scan: scanSSNs, mask: maskKeepLast4},
			"uk_nino": {name: "uk_nino", maxLen: ninoMaxLen, scan: scanNINOs, mask: maskKeepLast4},
		}
		if err := addKinds(cfg, "national_ids", c.NationalIDs, []string{"us_ssn", "uk_nino"}, kinds, add); err != nil {
			return nil, err
		}
	}
	if c.PrivateKeys != nil {
		d := &detector{name: "private_key", maxLen: pemMaxLen, scan: scanPrivateKeys(pemMaxLen), mask: maskPEM}
		if err := add("private_keys", c.PrivateKeys.Action, d); err != nil {
			return nil, err
		}
	}
	if c.AccessTokens != nil {
		kinds := map[string]*detector{
			"jwt":    {name: "jwt", maxLen: jwtMaxLen, scan: scanJWTs, mask: maskAllButDots},
			"aws":    {name: "aws_access_key", maxLen: formatsMaxLen(awsFormats), scan: scanKeys(awsFormats), mask: maskKeepPrefix(awsFormats)},
			"github": {name: "github_token", maxLen: formatsMaxLen(githubFormats), scan: scanKeys(githubFormats), mask: maskKeepPrefix(githubFormats)},
			"slack":  {name: "slack_token", maxLen: formatsMaxLen(slackFormats), scan: scanKeys(slackFormats), mask: maskKeepPrefix(slackFormats)},
		}
		if err := addKinds(cfg, "access_tokens", c.AccessTokens, []string{"jwt", "aws", "github", "slack"}, kinds, add); err != nil {
			return nil, err
		}
	}
	names := map[string]bool{}
	for _, d := range s.dets {
		names[d.name] = true
	}
	for i, cc := range c.Custom {
		field := config.Index("custom", i)
		if cc.Name == "" {
			return nil, cfg.Errorf(field, "dlp: a custom pattern needs a name")
		}
		if names[cc.Name] {
			return nil, cfg.Errorf(field+".name", "dlp: detector name %q is used twice", cc.Name)
		}
		names[cc.Name] = true
		if cc.Pattern == "" {
			return nil, cfg.Errorf(field, "dlp: a custom pattern needs a pattern")
		}
		re, err := regexp.Compile(cc.Pattern)
		if err != nil {
			return nil, cfg.Errorf(field+".pattern", "dlp: %v", err)
		}
		n := cc.MaxLength
		switch {
		case n == 0:
			n = defaultCustomLen
		case n < 0 || n > maxCustomLen:
			return nil, cfg.Errorf(field+".max_length", "dlp: max_length must be between 1 and %d", maxCustomLen)
		}
		d := &detector{name: cc.Name, maxLen: n, scan: scanRegexp(re, n), mask: maskKeepLast4}
		if err := add(field, cc.Action, d); err != nil {
			return nil, err
		}
	}
	if len(s.dets) == 0 {
		return nil, cfg.Errorf("", "dlp: no detector configured: give credit_cards, ibans, national_ids, private_keys, access_tokens or custom")
	}
	if c.ContentTypes != nil {
		if len(c.ContentTypes) == 0 {
			return nil, cfg.Errorf("content_types", "dlp: an empty list scans nothing; leave it out for the default")
		}
		s.types = make([]string, len(c.ContentTypes))
		for i, t := range c.ContentTypes {
			t = strings.ToLower(strings.TrimSpace(t))
			if !validTypePattern(t) {
				return nil, cfg.Errorf(config.Index("content_types", i), "dlp: %q is not type/subtype, type/* or +suffix", c.ContentTypes[i])
			}
			s.types[i] = t
		}
	}
	if c.MaxBuffer != 0 {
		if c.MaxBuffer < 1024 || c.MaxBuffer > 64<<20 {
			return nil, cfg.Errorf("max_buffer", "dlp: max_buffer must be between 1KiB and 64MiB")
		}
		s.maxBuffer = int(c.MaxBuffer)
	}
	switch c.Oversize {
	case "", "block":
	case "mask":
		s.oversize = actMask
	default:
		return nil, cfg.Errorf("oversize", "dlp: oversize %q is not block or mask", c.Oversize)
	}
	return s, nil
}

func addKinds(cfg *config.Node, field string, kc *KindsConfig, all []string, kinds map[string]*detector, add func(string, string, *detector) error) error {
	list := kc.Kinds
	if len(list) == 0 {
		list = all
	}
	seen := map[string]bool{}
	for i, k := range list {
		d, ok := kinds[k]
		if !ok {
			return cfg.Errorf(config.Index(field+".kinds", i), "dlp: unknown kind %q; known: %s", k, strings.Join(all, ", "))
		}
		if seen[k] {
			return cfg.Errorf(config.Index(field+".kinds", i), "dlp: kind %q is listed twice", k)
		}
		seen[k] = true
		if err := add(field, kc.Action, d); err != nil {
			return err
		}
	}
	return nil
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
