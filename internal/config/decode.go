package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder is the strict walker from a yaml.Node tree into Go values. It
// never stops at the first problem: every error is collected with its
// position and path, and decoding goes on with the next value.
type decoder struct {
	d    *doc
	errs Errors
	// strs, when not nil, interns the strings decoded: a config's routes
	// repeat the same upstream URLs and methods, and each copy would be
	// held as long as the config (issue 23).
	strs map[string]string
	// forked marks a decoder decoding a piece of a long sequence, which
	// does not split its own sequences further.
	forked bool
}

// intern returns s, or an equal string decoded before.
func (dc *decoder) intern(s string) string {
	if dc.strs == nil || len(s) > maxInterned {
		return s
	}
	if t, ok := dc.strs[s]; ok {
		return t
	}
	dc.strs[s] = s
	return s
}

// maxInterned bounds the strings interned: the repeated ones are short,
// and a long one is unlikely to be repeated.
const maxInterned = 256

// nodeDecoder is implemented by this package's scalar types (Duration,
// ByteSize): like yaml.Unmarshaler, but the error is a bare message the
// decoder places at the node.
type nodeDecoder interface {
	decodeNode(n *yaml.Node) error
}

var (
	nodeType          = reflect.TypeFor[Node]()
	nodePtrType       = reflect.TypeFor[*Node]()
	policySpecType    = reflect.TypeFor[PolicySpec]()
	secretType        = reflect.TypeFor[Secret]()
	stdDurationType   = reflect.TypeFor[time.Duration]()
	nodeDecoderType   = reflect.TypeFor[nodeDecoder]()
	unmarshalerType   = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (dc *decoder) errorf(at *yaml.Node, path string, format string, args ...any) {
	dc.errs = append(dc.errs, &Error{
		File: dc.d.file, Line: at.Line, Column: at.Column,
		Path: path, Msg: fmt.Sprintf(format, args...), cause: errorArg(args),
	})
}

// value decodes n, the value of mapping key key (nil for sequence items and
// the root), into v, which is settable.
func (dc *decoder) value(n, key *yaml.Node, path string, v reflect.Value) {
	at := posFor(key, n)
	n = resolveAlias(n)
	if dc.d.bad[n] {
		return
	}
	switch v.Type() {
	case nodeType:
		v.Set(reflect.ValueOf(Node{y: n, key: key, path: path, d: dc.d}))
		return
	case nodePtrType:
		v.Set(reflect.ValueOf(&Node{y: n, key: key, path: path, d: dc.d}))
		return
	case policySpecType:
		dc.policySpec(n, at, path, v)
		return
	}
	if !dc.knownTag(n, at, path) {
		return
	}
	if isNull(n) {
		// Null is "not set": nil for what can be nil, untouched otherwise,
		// so `read_timeout:` keeps the default.
		switch v.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
		}
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		dc.value(n, key, path, v.Elem())
		return
	}
	switch v.Type() {
	case secretType:
		dc.secret(n, at, path, v)
		return
	case stdDurationType:
		// A time.Duration would otherwise take a bare integer as
		// nanoseconds; read it like a Duration instead.
		var d Duration
		if err := d.decodeNode(n); err != nil {
			dc.errorf(at, path, "%v", err)
			return
		}
		v.SetInt(int64(d))
		return
	}
	if pt := reflect.PointerTo(v.Type()); v.CanAddr() {
		switch {
		case pt.Implements(nodeDecoderType):
			if err := v.Addr().Interface().(nodeDecoder).decodeNode(n); err != nil {
				dc.errorf(at, path, "%v", err)
			}
			return
		case pt.Implements(unmarshalerType):
			if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
				dc.errorf(at, path, "%v", err)
			}
			return
		case pt.Implements(textUnmarshalType):
			if n.Kind != yaml.ScalarNode {
				dc.errorf(at, path, "expected a string, got a %s", kindName(n))
				return
			}
			if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
				dc.errorf(at, path, "invalid value %q: %v", n.Value, err)
			}
			return
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		dc.structValue(n, at, path, v)
	case reflect.Slice:
		dc.sliceValue(n, at, path, v)
	case reflect.Map:
		dc.mapValue(n, at, path, v)
	case reflect.String:
		if s, ok := dc.stringScalar(n, at, path); ok {
			v.SetString(dc.intern(s))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			dc.errorf(at, path, "expected a boolean (true or false), got %s", describe(n))
			return
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if i, ok := dc.intScalar(n, at, path, v.Type().Bits(), true); ok {
			v.SetInt(i)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if i, ok := dc.intScalar(n, at, path, v.Type().Bits(), false); ok {
			v.SetUint(uint64(i))
		}
	case reflect.Float32, reflect.Float64:
		dc.floatValue(n, at, path, v)
	case reflect.Interface:
		if v.NumMethod() != 0 {
			dc.errorf(at, path, "cannot decode into Go type %s", v.Type())
			return
		}
		if g, ok := dc.generic(n, at, path); ok && g != nil {
			v.Set(reflect.ValueOf(g))
		}
	default:
		dc.errorf(at, path, "cannot decode into Go type %s", v.Type())
	}
}

// knownTag refuses explicit tags other than YAML's standard ones: a custom
// "!secret" tag would otherwise be silently read as a plain value.
func (dc *decoder) knownTag(n, at *yaml.Node, path string) bool {
	if n.Style&yaml.TaggedStyle == 0 {
		return true
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!!seq", "!!map":
		return true
	}
	dc.errorf(at, path, "unsupported tag %s", n.Tag)
	return false
}

// describe shows n in a message: "string \"yes\"", "mapping".
func describe(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return "a " + kindName(n)
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	return kindName(n) + " " + strconv.Quote(v)
}

// yaml11Bools are the words YAML 1.1 (and so many other tools) read as
// booleans but YAML 1.2 reads as strings. Unquoted, they are refused where a
// string is expected, so `country: no` does not mean different things to
// different readers.
var yaml11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true,
	"n": true, "N": true, "no": true, "No": true, "NO": true,
	"on": true, "On": true, "ON": true, "off": true, "Off": true, "OFF": true,
}

// stringScalar accepts strings, and the text of numbers and timestamps as
// written (so `min_version: 1.2` is "1.2" and `1.10` stays "1.10"). It
// refuses booleans and collections.
func (dc *decoder) stringScalar(n, at *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		dc.errorf(at, path, "expected a string, got a %s", kindName(n))
		return "", false
	}
	if dc.d.expanded[n] {
		// The value came from the environment, where every value is a
		// string: take it as written.
		return n.Value, true
	}
	switch n.ShortTag() {
	case "!!str":
		if n.Style == 0 && yaml11Bools[n.Value] {
			dc.errorf(at, path, "ambiguous unquoted %s (a boolean in YAML 1.1): write \"%s\" for the string", n.Value, n.Value)
			return "", false
		}
		return n.Value, true
	case "!!int", "!!float", "!!timestamp":
		return n.Value, true
	}
	dc.errorf(at, path, "expected a string, got %s (quote it if you mean the string)", describe(n))
	return "", false
}

// intScalar parses an !!int scalar (decimal, 0x, 0o, 0b, with _
// separators) into a signed or unsigned integer of the given bits, range
// checked. Unsigned results are returned as int64 bits.
func (dc *decoder) intScalar(n, at *yaml.Node, path string, bits int, signed bool) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		dc.errorf(at, path, "expected an integer, got %s", describe(n))
		return 0, false
	}
	plain := strings.ReplaceAll(n.Value, "_", "")
	if signed {
		i, err := strconv.ParseInt(plain, 0, bits)
		if err != nil {
			lo, hi := -(int64(1) << (bits - 1)), int64(1)<<(bits-1)-1
			dc.errorf(at, path, "integer %s is out of range [%d, %d]", n.Value, lo, hi)
			return 0, false
		}
		return i, true
	}
	u, err := strconv.ParseUint(strings.TrimPrefix(plain, "+"), 0, bits)
	if err != nil {
		hi := uint64(math.MaxUint64) >> (64 - bits)
		dc.errorf(at, path, "integer %s is out of range [0, %d]", n.Value, hi)
		return 0, false
	}
	return int64(u), true
}

func (dc *decoder) floatValue(n, at *yaml.Node, path string, v reflect.Value) {
	var f float64
	switch tag := n.ShortTag(); {
	case n.Kind == yaml.ScalarNode && tag == "!!int":
		i, ok := dc.intScalar(n, at, path, 64, true)
		if !ok {
			return
		}
		f = float64(i)
	case n.Kind == yaml.ScalarNode && tag == "!!float":
		var err error
		f, err = strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), v.Type().Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			dc.errorf(at, path, "number %s is not a finite %d-bit float", n.Value, v.Type().Bits())
			return
		}
	default:
		dc.errorf(at, path, "expected a number, got %s", describe(n))
		return
	}
	v.SetFloat(f)
}

func (dc *decoder) sliceValue(n, at *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		dc.errorf(at, path, "expected a sequence, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	if dc.forked || len(n.Content) < parallelItems || runtime.GOMAXPROCS(0) < 2 {
		dc.items(n.Content, 0, path, s)
		v.Set(s)
		return
	}
	// A long list (10,000 routes) is decoded in as many pieces as there
	// are cores (issue 23: the load time). The items are independent and
	// the doc is only read, so each piece has its own decoder; their
	// errors are joined in item order, as one decoder would report them.
	pieces := min(runtime.GOMAXPROCS(0), 8)
	forks := make([]decoder, pieces)
	var wg sync.WaitGroup
	for k := range forks {
		lo, hi := k*len(n.Content)/pieces, (k+1)*len(n.Content)/pieces
		f := &forks[k]
		*f = decoder{d: dc.d, forked: true}
		if dc.strs != nil {
			f.strs = make(map[string]string)
		}
		wg.Go(func() { f.items(n.Content[lo:hi], lo, path, s) })
	}
	wg.Wait()
	for _, f := range forks {
		dc.errs = append(dc.errs, f.errs...)
	}
	v.Set(s)
}

// parallelItems is the length from which a sequence is decoded in
// pieces: below it, starting goroutines costs more than it saves.
var parallelItems = 512 // a variable for tests

// items decodes the sequence items, the first of which is at index lo,
// into s[lo:].
func (dc *decoder) items(items []*yaml.Node, lo int, path string, s reflect.Value) {
	for i, item := range items {
		dc.value(item, nil, path+indexSeg(lo+i), s.Index(lo+i))
	}
}

func (dc *decoder) mapValue(n, at *yaml.Node, path string, v reflect.Value) {
	if v.Type().Key().Kind() != reflect.String {
		dc.errorf(at, path, "cannot decode into Go type %s (keys must be strings)", v.Type())
		return
	}
	if n.Kind != yaml.MappingNode {
		dc.errorf(at, path, "expected a mapping, got %s", describe(n))
		return
	}
	pairs := mappingPairs(n, &dc.errs, dc.d.file, path)
	m := reflect.MakeMapWithSize(v.Type(), len(pairs))
	for _, p := range pairs {
		elem := reflect.New(v.Type().Elem()).Elem()
		dc.value(p.v, p.k, keyPath(path, p.k.Value), elem)
		m.SetMapIndex(reflect.ValueOf(p.k.Value).Convert(v.Type().Key()), elem)
	}
	v.Set(m)
}

func (dc *decoder) structValue(n, at *yaml.Node, path string, v reflect.Value) {
	fields, err := structFields(v.Type())
	if err != nil {
		dc.errorf(at, path, "%v", err)
		return
	}
	if n.Kind != yaml.MappingNode {
		dc.errorf(at, path, "expected a mapping, got %s", describe(n))
		return
	}
	pairs := mappingPairs(n, &dc.errs, dc.d.file, path)
	for _, p := range pairs {
		f, ok := fields.byName[p.k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", p.k.Value)
			if s := suggest(p.k.Value, fields.names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			dc.errorf(p.k, keyPath(path, p.k.Value), "%s", msg)
			continue
		}
		dc.value(p.v, p.k, keyPath(path, p.k.Value), fieldByIndexAlloc(v, f))
	}
}

// fieldByIndexAlloc is v.FieldByIndex, allocating nil embedded pointers on
// the way to an inlined field.
func fieldByIndexAlloc(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

type fieldSet struct {
	byName map[string][]int
	names  []string
}

var fieldCache sync.Map // reflect.Type -> fieldSetResult

type fieldSetResult struct {
	fs  *fieldSet
	err error
}

// structFields lists the YAML names of t's fields: exported fields with a
// `yaml:"name"` tag, and the fields of `yaml:",inline"` struct fields. A
// field without a yaml tag has no YAML name and cannot be set from YAML.
func structFields(t reflect.Type) (*fieldSet, error) {
	if r, ok := fieldCache.Load(t); ok {
		r := r.(fieldSetResult)
		return r.fs, r.err
	}
	fs := &fieldSet{byName: make(map[string][]int)}
	err := addFields(fs, t, nil, map[reflect.Type]bool{})
	fieldCache.Store(t, fieldSetResult{fs, err})
	return fs, err
}

func addFields(fs *fieldSet, t reflect.Type, prefix []int, visiting map[reflect.Type]bool) error {
	if visiting[t] {
		return fmt.Errorf("cannot decode into Go type %s: recursive inline field", t)
	}
	visiting[t] = true
	defer delete(visiting, t)
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("yaml")
		// An embedded struct of an unexported type may still be inlined:
		// its exported fields are settable, as in encoding/json.
		if !ok || !f.IsExported() && !(f.Anonymous && f.Type.Kind() == reflect.Struct) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		index := append(append([]int(nil), prefix...), i)
		if opts == "inline" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() != reflect.Struct {
				return fmt.Errorf("cannot decode into Go type %s: inline field %s is not a struct", t, f.Name)
			}
			if err := addFields(fs, ft, index, visiting); err != nil {
				return err
			}
			continue
		}
		if name == "" {
			continue
		}
		if _, dup := fs.byName[name]; dup {
			return fmt.Errorf("cannot decode into Go type %s: two fields named %q", t, name)
		}
		fs.byName[name] = index
		fs.names = append(fs.names, name)
	}
	return nil
}

// suggest returns the known name closest to an unknown one, if it is close
// enough to be a likely typo.
func suggest(got string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if strings.EqualFold(n, got) {
			return n
		}
		if d := editDistance(strings.ToLower(got), n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// generic decodes n into plain Go values for an `any` target: string,
// int, float64, bool, nil, []any and map[string]any.
func (dc *decoder) generic(n, at *yaml.Node, path string) (any, bool) {
	switch n.Kind {
	case yaml.MappingNode:
		pairs := mappingPairs(n, &dc.errs, dc.d.file, path)
		m := make(map[string]any, len(pairs))
		ok := true
		for _, p := range pairs {
			p.v = resolveAlias(p.v)
			if dc.d.bad[p.v] || !dc.knownTag(p.v, posFor(p.k, p.v), keyPath(path, p.k.Value)) {
				ok = false
				continue
			}
			g, gok := dc.generic(p.v, posFor(p.k, p.v), keyPath(path, p.k.Value))
			ok = ok && gok
			m[p.k.Value] = g
		}
		return m, ok
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		ok := true
		for i, item := range n.Content {
			item = resolveAlias(item)
			if dc.d.bad[item] || !dc.knownTag(item, item, path+indexSeg(i)) {
				ok = false
				continue
			}
			g, gok := dc.generic(item, item, path+indexSeg(i))
			ok = ok && gok
			s[i] = g
		}
		return s, ok
	}
	switch n.ShortTag() {
	case "!!null":
		return nil, true
	case "!!bool":
		return strings.EqualFold(n.Value, "true"), true
	case "!!int":
		i, ok := dc.intScalar(n, at, path, 64, true)
		if ok && int64(int(i)) == i {
			return int(i), true
		}
		return i, ok
	case "!!float":
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			dc.errorf(at, path, "number %s is not finite", n.Value)
			return nil, false
		}
		return f, true
	}
	return n.Value, true
}

// policySpec decodes one entry of a route's policies: a mapping with
// exactly one key, the policy type, whose value is kept raw for the policy's
// factory.
func (dc *decoder) policySpec(n, at *yaml.Node, path string, v reflect.Value) {
	const want = "a policy entry is a mapping with one key, the policy type, like `- ipfilter: {allow: [10.0.0.0/8]}`"
	if n.Kind != yaml.MappingNode {
		dc.errorf(at, path, "%s; got %s", want, describe(n))
		return
	}
	before := len(dc.errs)
	pairs := mappingPairs(n, &dc.errs, dc.d.file, path)
	if len(dc.errs) > before {
		return
	}
	switch len(pairs) {
	case 0:
		dc.errorf(at, path, "%s; got an empty mapping", want)
		return
	case 1:
	default:
		keys := make([]string, len(pairs))
		for i, p := range pairs {
			keys[i] = p.k.Value
		}
		dc.errorf(pairs[1].k, path, "a policy entry must have exactly one key, the policy type; got %d (%s): is %q meant to be indented under %q?",
			len(pairs), strings.Join(keys, ", "), pairs[1].k.Value, pairs[0].k.Value)
		return
	}
	p := pairs[0]
	if p.k.Value == "" || p.k.ShortTag() != "!!str" {
		dc.errorf(p.k, path, "a policy type must be a non-empty name, got %s", describe(p.k))
		return
	}
	v.Set(reflect.ValueOf(PolicySpec{
		Type:   dc.intern(p.k.Value),
		Config: &Node{y: resolveAlias(p.v), key: p.k, path: keyPath(path, p.k.Value), d: dc.d},
	}))
}
