package expr

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// ipInFunc is ip_in(address, cidr): whether the address string is in the
// CIDR prefix (or equals the single address) given.
const ipInFunc = "ip_in"

// baseEnv is the one CEL environment of every expr policy: building it
// costs milliseconds, and a cel.Env is immutable and safe for concurrent
// use.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	prov, err := newProvider()
	if err != nil {
		return nil, err
	}
	return cel.NewEnv(
		cel.CustomTypeProvider(prov),
		cel.CustomTypeAdapter(prov),
		cel.Variable("principal", cel.ObjectType(principalTypeName)),
		cel.Variable("request", cel.ObjectType(requestTypeName)),
		cel.Variable("now", cel.TimestampType),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		// No cel-go ext library: the package pulls in golang.org/x/text,
		// which is not among the vetted modules, and the standard
		// functions (startsWith, endsWith, contains, matches, size,
		// exists, all, timestamps) cover the checks of a gateway. Nothing
		// that reaches the network or the file system at run time is
		// added; now is the one clock.
		cel.ParserExpressionSizeLimit(maxExprLen),
		cel.Function(ipInFunc,
			cel.Overload("ip_in_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(addr, cidr ref.Val) ref.Val {
					p, err := parsePrefix(string(cidr.(types.String)))
					if err != nil {
						return types.WrapErr(err)
					}
					return ipIn(addr, p)
				}))),
	)
})

// ipIn reports whether addr, a string, is an address in p. A string that
// is not an address (an unknown client IP is "") is in no prefix.
func ipIn(addr ref.Val, p netip.Prefix) ref.Val {
	s, ok := addr.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(addr)
	}
	a, err := netip.ParseAddr(string(s))
	if err != nil {
		return types.False
	}
	return types.Bool(p.Contains(a.WithZone("").Unmap()))
}

// parsePrefix parses a CIDR prefix or a single address, as the ipfilter
// policy does: IPv4-mapped forms become IPv4, bits set past the prefix
// length are refused as a likely typo, zones are refused.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past the prefix length; did you mean %s?", s, m)
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix must be at least /96", s)
		}
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96), nil
	}
	return p, nil
}

// timestampAccessors are the timestamp methods taking a time zone.
var timestampAccessors = map[string]bool{
	overloads.TimeGetFullYear: true, overloads.TimeGetMonth: true, overloads.TimeGetDayOfYear: true,
	overloads.TimeGetDayOfMonth: true, overloads.TimeGetDate: true, overloads.TimeGetDayOfWeek: true,
	overloads.TimeGetHours: true, overloads.TimeGetMinutes: true, overloads.TimeGetSeconds: true,
	overloads.TimeGetMilliseconds: true,
}

// zoneAccessors are the overloads with a time zone argument that
// constantDecorator can run with the zone loaded once.
var zoneAccessors = map[string]func(time.Time) int{
	overloads.TimestampToYearWithTz:                func(t time.Time) int { return t.Year() },
	overloads.TimestampToMonthWithTz:               func(t time.Time) int { return int(t.Month()) - 1 },
	overloads.TimestampToDayOfYearWithTz:           func(t time.Time) int { return t.YearDay() - 1 },
	overloads.TimestampToDayOfMonthZeroBasedWithTz: func(t time.Time) int { return t.Day() - 1 },
	overloads.TimestampToDayOfMonthOneBasedWithTz:  func(t time.Time) int { return t.Day() },
	overloads.TimestampToDayOfWeekWithTz:           func(t time.Time) int { return int(t.Weekday()) },
	overloads.TimestampToHoursWithTz:               func(t time.Time) int { return t.Hour() },
	overloads.TimestampToMinutesWithTz:             func(t time.Time) int { return t.Minute() },
	overloads.TimestampToSecondsWithTz:             func(t time.Time) int { return t.Second() },
	overloads.TimestampToMillisecondsWithTz:        func(t time.Time) int { return t.Nanosecond() / 1e6 },
}

// loadZone resolves a CEL time zone argument: an IANA name
// ("Europe/Berlin") or a fixed offset ("+02:00", "-05:30"), as CEL does.
func loadZone(tz string) (*time.Location, error) {
	sign, hm, ok := strings.Cut(tz, ":")
	if !ok {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("unknown time zone %q", tz)
		}
		return loc, nil
	}
	h, herr := strconv.Atoi(sign)
	m, merr := strconv.Atoi(hm)
	if herr != nil || merr != nil || h < -23 || h > 23 || m < 0 || m > 59 {
		return nil, fmt.Errorf("bad time zone offset %q (want e.g. +02:00)", tz)
	}
	off := h*3600 + m*60
	if strings.HasPrefix(sign, "-") {
		off = h*3600 - m*60
	}
	return time.FixedZone(tz, off), nil
}

// constantDecorator plans calls whose costly argument is a constant once:
// ip_in with a constant prefix parses it at load, not per request, and
// timestamp accessors with a constant zone load the zone at load (CEL
// itself calls time.LoadLocation, which reads the zone database, on every
// evaluation).
func constantDecorator(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
	call, ok := i.(interpreter.InterpretableCall)
	if !ok {
		return i, nil
	}
	args := call.Args()
	if len(args) != 2 {
		return i, nil
	}
	c, ok := args[1].(interpreter.InterpretableConst)
	if !ok {
		return i, nil
	}
	s, ok := c.Value().(types.String)
	if !ok {
		return i, nil
	}
	if call.Function() == ipInFunc {
		p, err := parsePrefix(string(s))
		if err != nil {
			return nil, fmt.Errorf("ip_in: %w", err)
		}
		return &ipInConst{id: i.ID(), addr: args[0], prefix: p}, nil
	}
	if get, ok := zoneAccessors[call.OverloadID()]; ok {
		loc, err := loadZone(string(s))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", call.Function(), err)
		}
		return &zoneConst{id: i.ID(), ts: args[0], loc: loc, get: get}, nil
	}
	return i, nil
}

// ipInConst is ip_in(addr, "constant").
type ipInConst struct {
	id     int64
	addr   interpreter.InterpretableV2
	prefix netip.Prefix
}

func (e *ipInConst) ID() int64 { return e.id }
func (e *ipInConst) Eval(a interpreter.Activation) ref.Val {
	return e.result(e.addr.Eval(a))
}
func (e *ipInConst) Exec(f *interpreter.ExecutionFrame) ref.Val {
	return e.result(e.addr.Exec(f))
}
func (e *ipInConst) result(v ref.Val) ref.Val {
	if types.IsUnknownOrError(v) {
		return v
	}
	return ipIn(v, e.prefix)
}

// zoneConst is ts.getHours("constant zone") and its siblings.
type zoneConst struct {
	id  int64
	ts  interpreter.InterpretableV2
	loc *time.Location
	get func(time.Time) int
}

func (e *zoneConst) ID() int64 { return e.id }
func (e *zoneConst) Eval(a interpreter.Activation) ref.Val {
	return e.result(e.ts.Eval(a))
}
func (e *zoneConst) Exec(f *interpreter.ExecutionFrame) ref.Val {
	return e.result(e.ts.Exec(f))
}
func (e *zoneConst) result(v ref.Val) ref.Val {
	ts, ok := v.(types.Timestamp)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	return types.Int(e.get(ts.Time.In(e.loc)))
}

// Sizes the cost estimate assumes for request and principal data. They
// are not limits: an evaluation on larger data is still stopped by the
// run-time cost limit. They make "worst case" mean "worst case on
// ordinary requests", so that a scope check or a header comparison has a
// small bounded estimate and an expression looping over request data has
// a large one.
const (
	// estStringLen bounds a string: a path, a header value, a claim.
	estStringLen = 4096
	// estEntries bounds a list or map: scopes, headers, query
	// parameters.
	estEntries = 64
	// estClaim bounds a claim of JSON type (dyn): a string's length, a
	// list's or map's entries. Claims come from tokens that fit in a
	// header, and are short.
	estClaim = 256
)

// estimator gives the sizes of the variables' data to CEL's cost
// estimate; CEL would otherwise take every string, list and map as
// unboundedly large, and any expression touching them as unbounded.
type estimator struct{}

func (estimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if len(n.Path()) == 0 && n.ComputedSize() != nil {
		// A literal, or built from sized parts (concatenations): CEL
		// knows better.
		return nil
	}
	// A variable's data, or a value picked from it by a call CEL cannot
	// size (an optional's orValue, an index with a computed key): it is
	// no larger than the data it came from.
	sz := sizeOf(n.Type(), 0)
	return &sz
}

// sizeOf is the assumed size of a value of type t, nested depth deep.
func sizeOf(t *types.Type, depth int) cost.SizeEstimate {
	str := cost.RangedSizeEstimate(0, estStringLen)
	if depth > 3 {
		return cost.RangedSizeEstimate(0, estClaim)
	}
	switch t.Kind() {
	case types.OpaqueKind:
		if t.TypeName() == "optional_type" && len(t.Parameters()) == 1 {
			// An optional's value, e.g. principal.claims.?roles.
			return sizeOf(t.Parameters()[0], depth)
		}
	case types.ListKind:
		elem := sizeOf(t.Parameters()[0], depth+1)
		return cost.SizeEstimate{Min: 0, Max: estEntries, Elem: &elem}
	case types.MapKind:
		key := sizeOf(t.Parameters()[0], depth+1)
		val := sizeOf(t.Parameters()[1], depth+1)
		return cost.SizeEstimate{Min: 0, Max: estEntries, Key: &key, Elem: &val}
	case types.DynKind:
		// A claim: a string, or a list or map of them (JSON), as large
		// as either.
		inner := sizeOf(types.DynType, depth+1)
		key := cost.RangedSizeEstimate(0, estClaim)
		return cost.SizeEstimate{Min: 0, Max: estClaim, Key: &key, Elem: &inner}
	}
	return str
}

func (estimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil
}
