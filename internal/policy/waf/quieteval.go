package waf

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
	"github.com/corazawaf/libinjection-go"
	"rsc.io/binaryregexp"
)

// Exact evaluation for the quiet path (quiet.go): operators and
// transformations restated from Coraza 3.8.1, checked against it by
// TestQuietTransformsMatchCoraza and TestQuietMatchesRules.

// newQOp returns the evaluable operator name(arg), or nil.
func newQOp(name, arg string) *qOp {
	o := &qOp{kind: name, arg: arg}
	switch name {
	case operatorName, "rx":
		expr := "(?sm)" + arg
		if matchesBytes(expr) {
			// As newRx: the byte-oriented matcher, without the flags.
			re, err := binaryregexp.Compile(arg)
			if err != nil {
				return nil
			}
			o.re, o.kind = re, "rx"
			return o
		}
		if v, ok := compiled.Load(expr); ok {
			o.re = v.(*rx) // with its pre-filter: the same answers, faster
		} else {
			re, err := regexp.Compile(expr)
			if err != nil {
				return nil
			}
			o.re = re
		}
		o.kind = "rx"
	case "streq", "within", "contains", "beginswith", "endswith", "detectsqli", "detectxss":
	case "eq", "gt", "lt", "ge", "le":
	case "ipmatch":
		// As Coraza's newIPMatch: bare addresses are /32 or /128, and
		// entries that do not parse are left out.
		for _, sb := range strings.Split(arg, ",") {
			sb = strings.TrimSpace(sb)
			if sb == "" {
				continue
			}
			if strings.Contains(sb, ":") && !strings.Contains(sb, "/") {
				sb += "/128"
			} else if strings.Contains(sb, ".") && !strings.Contains(sb, "/") {
				sb += "/32"
			}
			if _, subnet, err := net.ParseCIDR(sb); err == nil {
				o.subnets = append(o.subnets, *subnet)
			}
		}
	case "validatebyterange":
		if arg == "" {
			return nil
		}
		for _, br := range strings.Split(arg, ",") {
			br = strings.TrimSpace(br)
			start, end, isRange := strings.Cut(br, "-")
			s, err := strconv.Atoi(start)
			if err != nil || s < 0 || s > 255 {
				return nil
			}
			e := s
			if isRange {
				if e, err = strconv.Atoi(end); err != nil || e < 0 || e > 255 {
					return nil
				}
			}
			for i := s; i <= e; i++ {
				o.vbr[i] = true
			}
		}
	default:
		return nil
	}
	return o
}

// match is the operator on one value, as Coraza 3.8.1 evaluates it.
func (o *qOp) match(v string) bool {
	switch o.kind {
	case "rx":
		return o.re.MatchString(v)
	case "streq":
		return o.arg == v
	case "within":
		return strings.Contains(o.arg, v)
	case "contains":
		return strings.Contains(v, o.arg)
	case "beginswith":
		return strings.HasPrefix(v, o.arg)
	case "endswith":
		return strings.HasSuffix(v, o.arg)
	case "detectsqli":
		m, _ := libinjection.IsSQLi(v)
		return m
	case "detectxss":
		return libinjection.IsXSS(v)
	case "ipmatch":
		ip := net.ParseIP(v)
		for _, subnet := range o.subnets {
			if subnet.Contains(ip) {
				return true
			}
		}
		return false
	case "validatebyterange":
		if v == "" {
			return false
		}
		for i := 0; i < len(v); i++ {
			if !o.vbr[v[i]] {
				return true
			}
		}
		return false
	}
	a, _ := strconv.Atoi(v)
	b, _ := strconv.Atoi(o.arg)
	switch o.kind {
	case "eq":
		return a == b
	case "gt":
		return a > b
	case "lt":
		return a < b
	case "ge":
		return a >= b
	case "le":
		return a <= b
	}
	return false
}

// transform applies a link's transformations to v as Coraza 3.8.1 does,
// when each step is one it can compute (proof 5): false when not.
//
// Exact everywhere: lowercase, length, removeNulls and removeWhitespace
// (Coraza calls the same standard library functions), base64Decode
// (base64DecodeStrict). Exact on ASCII: cmdLine (xform.go).
// Other steps in transformTriggers: only when the value holds none of
// their triggers, which leaves it unchanged; on a value with bytes of
// 0x80 and above, only the steps that look at ASCII bytes alone
// (byteSteps). TestQuietTransformsMatchCoraza checks every chain of the
// rule set against Coraza's own.
func transform(chain []string, v string) (string, bool) {
	ascii := asciiOnly(v)
	for _, t := range chain {
		switch t {
		case "lowercase":
			v = strings.ToLower(v)
			continue
		case "length":
			v = strconv.Itoa(len(v))
			ascii = true
			continue
		case "removenulls":
			v = strings.ReplaceAll(v, "\x00", "")
			continue
		case "removewhitespace":
			v = strings.Map(dropSpace, v)
			continue
		case "base64decode":
			v = base64DecodeStrict(v)
			ascii = asciiOnly(v)
			continue
		case "cmdline":
			// Coraza's cmdLine lowers every letter, so its result is its
			// own lowering, which cmdLineASCII computes from the input's
			// (xform.go, TestExactTransforms).
			if !ascii {
				return "", false
			}
			v = cmdLineASCII(strings.ToLower(v))
			continue
		case "removecommentschar":
			// Changes only at /* */ <!-- --> -- and #.
			if strings.Contains(v, "/*") || strings.Contains(v, "*/") || strings.Contains(v, "--") || strings.IndexByte(v, '#') >= 0 {
				return "", false
			}
			continue
		}
		trig, known := transformTriggers[t]
		if !known || !ascii && !byteSteps[t] || triggers(v)&trig&^trigHigh != 0 {
			return "", false
		}
	}
	return v, true
}

// byteSteps are the transformations that, on any bytes, change a value
// only at ASCII bytes of their triggers: urlDecode(Uni) at % and +,
// jsDecode at \, replaceComments at /*.
var byteSteps = map[string]bool{"none": true, "urldecode": true, "urldecodeuni": true, "jsdecode": true, "replacecomments": true}

// dropSpace is Coraza's removeWhitespace mapping.
func dropSpace(r rune) rune {
	if unicode.IsSpace(r) {
		return -1
	}
	return r
}

// base64Dec maps the base64 alphabet to its values, 127 elsewhere.
var base64Dec = func() (t [128]byte) {
	for i := range t {
		t[i] = 127
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = byte(i)
	}
	return t
}()

// base64DecodeStrict is Coraza 3.8.1's t:base64Decode (doBase64decode,
// Apache-2.0, restated): \r and \n are skipped, '=' or a space ends the
// input, as does any byte outside the alphabet; a partial last group
// gives its whole bytes.
func base64DecodeStrict(src string) string {
	if src == "" {
		return src
	}
	var n, x int
	var dst strings.Builder
	dst.Grow(len(src))
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\r' || c == '\n' {
			continue
		}
		if c == '=' || c == ' ' || c > 127 || base64Dec[c] == 127 {
			break
		}
		x = x<<6 | int(base64Dec[c]&0x3F)
		n++
		if n == 4 {
			dst.WriteByte(byte(x >> 16))
			dst.WriteByte(byte(x >> 8))
			dst.WriteByte(byte(x))
			n, x = 0, 0
		}
	}
	switch n {
	case 2:
		x <<= 12
		dst.WriteByte(byte(x >> 16))
	case 3:
		x <<= 6
		dst.WriteByte(byte(x >> 16))
		dst.WriteByte(byte(x >> 8))
	}
	return dst.String()
}

// evalStatic is eval for a link whose targets are request variables
// nothing changes during the phases; false ok otherwise.
func (l *qLink) evalStatic(tx plugintypes.TransactionState, qs *quietScratch) (matched, ok bool) {
	if l.op == nil || l.partial {
		return false, false
	}
	for _, t := range l.targets {
		if !staticVars[t.v] {
			return false, false
		}
	}
	return l.eval(tx, qs)
}

// eval evaluates the link on tx's values: whether it matches, and false
// ok when a value is not one transform can compute.
func (l *qLink) eval(tx plugintypes.TransactionState, qs *quietScratch) (matched, ok bool) {
	for _, t := range l.targets {
		vs := qs.values(tx, t)
		if t.count {
			if l.test(qs, strconv.Itoa(len(vs)), &ok) {
				return true, true
			}
			if !ok {
				return false, false
			}
			continue
		}
		for _, v := range vs {
			if l.test(qs, v, &ok) {
				return true, true
			}
			if !ok {
				return false, false
			}
		}
	}
	return false, true
}

// test transforms v and runs the operator, negation included; with
// multiMatch, on v and on every value a transformation reported changed,
// as Coraza's executeTransformationsMultimatch does.
func (l *qLink) test(qs *quietScratch, v string, ok *bool) bool {
	if !l.multi {
		k := xfKey{l.chainID, v}
		x, seen := qs.xf[k]
		if !seen {
			x.out, x.ok = transform(l.chain, v)
			qs.xf[k] = x
		}
		*ok = x.ok
		return x.ok && l.op.match(x.out) != l.negated
	}
	vs, good := multiValues(l.chain, v)
	*ok = good
	if !good {
		return false
	}
	for _, x := range vs {
		if l.op.match(x) != l.negated {
			return true
		}
	}
	return false
}

// multiValues are the values a multiMatch operator sees for v: v, then
// each value a transformation reported changed.
func multiValues(chain []string, v string) ([]string, bool) {
	out := []string{v}
	cur := v
	for _, t := range chain {
		next, changed, ok := multiStep(t, cur)
		if !ok {
			return nil, false
		}
		if changed {
			cur = next
			out = append(out, cur)
		}
	}
	return out, true
}

// multiStep is one transformation as multiMatch sees it: the value and
// Coraza's changed flag (which, when false, leaves the previous value in
// place even if the function's result differs: removeWhitespace on
// invalid UTF-8). A step whose flag this cannot tell is refused; a flag
// that says changed on an equal value only repeats an evaluation.
func multiStep(t, v string) (next string, changed, ok bool) {
	switch t {
	case "lowercase":
		next = strings.ToLower(v)
		return next, next != v, true
	case "removenulls":
		next = strings.ReplaceAll(v, "\x00", "")
		return next, len(next) != len(v), true
	case "removewhitespace":
		if strings.IndexFunc(v, unicode.IsSpace) < 0 {
			return v, false, true
		}
		return strings.Map(dropSpace, v), true, true
	case "base64decode":
		return base64DecodeStrict(v), true, true
	case "length":
		return strconv.Itoa(len(v)), true, true
	case "cmdline", "removecommentschar":
		return "", false, false
	}
	// A step that leaves the value as it is.
	next, ok = transform([]string{t}, v)
	return next, false, ok && next == v
}

func asciiOnly(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			return false
		}
	}
	return true
}

// restricted is proof 6: for shapeHeaderNames, no header name of the
// request, lowered and slashed, is in the restricted list; for
// shapeCaptureWithin, the value the first link would set from its
// capture, through the second link's transformations, is not.
func (s *quietSet) restricted(tx plugintypes.TransactionState, qs *quietScratch, p *quietProof) bool {
	if p.list == "" {
		return false
	}
	if p.shape == shapeHeaderNames {
		col := tx.Collection(variables.RequestHeadersNames)
		if col == nil {
			return true
		}
		for _, m := range col.FindAll() {
			name, ok := transform([]string{"lowercase"}, m.Value())
			if !ok || strings.Contains(p.list, "/"+name+"/") {
				return false
			}
		}
		return true
	}
	h, c := p.r.links[0], p.r.links[1]
	if p.captureRe == nil {
		return false
	}
	vs := qs.values(tx, h.targets[0])
	if len(vs) != 1 {
		return len(vs) == 0 // no value: the first link cannot match
	}
	v, ok := transform(h.chain, vs[0])
	if !ok {
		return false
	}
	m := p.captureRe.FindStringSubmatchIndex(v)
	if m == nil {
		return true // the first link does not match
	}
	// As Coraza's capturing @rx: TX.0 to TX.8 are the groups, "" when
	// a group did not take part.
	var groups [9]string
	for i := 0; i < len(m)/2 && i < 9; i++ {
		if m[2*i] >= 0 {
			groups[i] = v[m[2*i]:m[2*i+1]]
		}
	}
	known := true
	set := macroRx.ReplaceAllStringFunc(p.r.template, func(mac string) string {
		_, n, _ := strings.Cut(mac[2:len(mac)-1], ".")
		i, err := strconv.Atoi(n)
		if err != nil || i >= len(m)/2 || i > 8 {
			known = false
			return ""
		}
		return groups[i]
	})
	if !known {
		return false
	}
	lv, ok := transform(c.chain, set)
	return ok && !strings.Contains(p.list, lv)
}
