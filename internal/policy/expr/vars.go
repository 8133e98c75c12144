package expr

import (
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"

	"github.com/gatehouse/gatehouse/internal/policy"
)

// The variables' CEL types. principal and request are object types whose
// fields the checker knows (a misspelt field fails the load) and whose
// values are read from the Exchange only when an expression selects them:
// nothing is copied into maps up front.
const (
	principalTypeName = "gatehouse.Principal"
	requestTypeName   = "gatehouse.Request"
)

var (
	principalType = types.NewObjectType(principalTypeName)
	requestType   = types.NewObjectType(requestTypeName)
	stringMapType = types.NewMapType(types.StringType, types.StringType)
)

// activation resolves the variables of one evaluation. It is pooled: a
// request's evaluations share one, and nothing built from it may outlive
// Apply.
type activation struct {
	ex      *policy.Exchange
	now     func() time.Time
	adapter types.Adapter

	// Cached per request, built on first use.
	scopes   ref.Val
	claims   ref.Val
	clientIP ref.Val
	nowVal   ref.Val

	principal principalVal
	request   requestVal
	headers   lazyMap
	query     lazyMap
	params    lazyMap
}

var activationPool = sync.Pool{New: func() any {
	a := &activation{}
	a.principal.a = a
	a.request.a = a
	a.headers = lazyMap{a: a, kind: headersMap}
	a.query = lazyMap{a: a, kind: queryMap}
	a.params = lazyMap{a: a, kind: paramsMap}
	return a
}}

func getActivation(ex *policy.Exchange, now func() time.Time, adapter types.Adapter) *activation {
	a := activationPool.Get().(*activation)
	a.ex, a.now, a.adapter = ex, now, adapter
	return a
}

func (a *activation) release() {
	a.ex, a.now, a.adapter = nil, nil, nil
	a.scopes, a.claims, a.clientIP, a.nowVal = nil, nil, nil, nil
	a.headers.m, a.query.m, a.params.m = nil, nil, nil
	activationPool.Put(a)
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "principal":
		return &a.principal, true
	case "request":
		return &a.request, true
	case "now":
		if a.nowVal == nil {
			a.nowVal = types.Timestamp{Time: a.now()}
		}
		return a.nowVal, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// emptyPrincipal stands in when the request has none: its fields are
// empty, so expressions read "" and [] rather than fail.
var emptyPrincipal = &policy.Principal{}

func (a *activation) pr() *policy.Principal {
	if a.ex.Principal == nil {
		return emptyPrincipal
	}
	return a.ex.Principal
}

// Common strings boxed once: a field read then allocates nothing.
var (
	emptyString = types.String("")
	boxedMethod = func() map[string]ref.Val {
		m := map[string]ref.Val{}
		for _, name := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
			http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace} {
			m[name] = types.String(name)
		}
		return m
	}()
	boxedScheme = map[string]ref.Val{"http": types.String("http"), "https": types.String("https")}
)

func str(s string) ref.Val {
	if s == "" {
		return emptyString
	}
	return types.String(s)
}

// fieldGetter reads one field of principal or request.
type fieldGetter struct {
	t   *types.Type
	get func(a *activation) ref.Val
	set func(a *activation) bool
}

// principalFields are principal's fields. A field is "set" (has()) when
// it is not empty.
var principalFields = map[string]fieldGetter{
	"subject":   strField(func(a *activation) string { return a.pr().Subject }),
	"client_id": strField(func(a *activation) string { return a.pr().ClientID }),
	"consumer":  strField(func(a *activation) string { return a.pr().Consumer }),
	"method":    strField(func(a *activation) string { return a.pr().Method }),
	"scopes": {
		t: types.NewListType(types.StringType),
		get: func(a *activation) ref.Val {
			if a.scopes == nil {
				a.scopes = types.NewStringList(a.adapter, a.pr().Scopes)
			}
			return a.scopes
		},
		set: func(a *activation) bool { return len(a.pr().Scopes) > 0 },
	},
	"claims": {
		t: types.NewMapType(types.StringType, types.DynType),
		get: func(a *activation) ref.Val {
			if a.claims == nil {
				c := a.pr().Claims
				if c == nil {
					c = map[string]any{}
				}
				a.claims = types.NewStringInterfaceMap(a.adapter, c)
			}
			return a.claims
		},
		set: func(a *activation) bool { return len(a.pr().Claims) > 0 },
	},
	"authenticated": {
		t:   types.BoolType,
		get: func(a *activation) ref.Val { return types.Bool(a.ex.Principal != nil) },
		set: func(a *activation) bool { return a.ex.Principal != nil },
	},
}

// requestFields are request's fields.
var requestFields = map[string]fieldGetter{
	"method": {
		t: types.StringType,
		get: func(a *activation) ref.Val {
			if v, ok := boxedMethod[a.ex.Request.Method]; ok {
				return v
			}
			return str(a.ex.Request.Method)
		},
		set: func(a *activation) bool { return true },
	},
	"path": strField(func(a *activation) string { return a.ex.Request.URL.Path }),
	"host": strField(func(a *activation) string { return a.ex.Request.Host }),
	"scheme": {
		t:   types.StringType,
		get: func(a *activation) ref.Val { return boxedScheme[scheme(a.ex)] },
		set: func(a *activation) bool { return true },
	},
	"client_ip": {
		t: types.StringType,
		get: func(a *activation) ref.Val {
			if a.clientIP == nil {
				if ip := a.ex.ClientIP; ip.IsValid() {
					a.clientIP = types.String(ip.String())
				} else {
					a.clientIP = emptyString
				}
			}
			return a.clientIP
		},
		set: func(a *activation) bool { return a.ex.ClientIP.IsValid() },
	},
	"headers": mapField(func(a *activation) *lazyMap { return &a.headers }),
	"query":   mapField(func(a *activation) *lazyMap { return &a.query }),
	"params":  mapField(func(a *activation) *lazyMap { return &a.params }),
}

func scheme(ex *policy.Exchange) string {
	if ex.TLS {
		return "https"
	}
	return "http"
}

func strField(f func(a *activation) string) fieldGetter {
	return fieldGetter{
		t:   types.StringType,
		get: func(a *activation) ref.Val { return str(f(a)) },
		set: func(a *activation) bool { return f(a) != "" },
	}
}

func mapField(f func(a *activation) *lazyMap) fieldGetter {
	return fieldGetter{
		t:   stringMapType,
		get: func(a *activation) ref.Val { return f(a) },
		set: func(a *activation) bool { return true },
	}
}

// provider adds principal's and request's types to CEL's own registry.
type provider struct {
	*types.Registry
	fields map[string]map[string]*types.FieldType
}

func newProvider() (*provider, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, err
	}
	p := &provider{Registry: reg, fields: map[string]map[string]*types.FieldType{}}
	p.add(principalTypeName, principalFields, func(obj any) *activation { return obj.(*principalVal).a })
	p.add(requestTypeName, requestFields, func(obj any) *activation { return obj.(*requestVal).a })
	return p, nil
}

func (p *provider) add(name string, fields map[string]fieldGetter, act func(any) *activation) {
	m := make(map[string]*types.FieldType, len(fields))
	for fname, f := range fields {
		m[fname] = &types.FieldType{
			Type:    f.t,
			IsSet:   func(obj any) bool { return f.set(act(obj)) },
			GetFrom: func(obj any) (any, error) { return f.get(act(obj)), nil },
		}
	}
	p.fields[name] = m
}

// FindStructType implements types.Provider.
func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if _, ok := p.fields[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Registry.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if m, ok := p.fields[name]; ok {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		return names, true
	}
	return p.Registry.FindStructFieldNames(name)
}

// FindStructFieldType implements types.Provider.
func (p *provider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if m, ok := p.fields[name]; ok {
		ft, ok := m[field]
		return ft, ok
	}
	return p.Registry.FindStructFieldType(name, field)
}

// NewValue refuses to build principal and request values in expressions:
// they come from the request only.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.fields[name]; ok {
		return types.NewErr("%s values cannot be constructed", name)
	}
	return p.Registry.NewValue(name, fields)
}

// principalVal and requestVal are the variables' values: views of the
// activation's Exchange.
type principalVal struct{ a *activation }
type requestVal struct{ a *activation }

func (v *principalVal) ConvertToNative(t reflect.Type) (any, error) {
	return nil, errNoNative(principalTypeName)
}
func (v *principalVal) ConvertToType(t ref.Type) ref.Val { return convertObject(v, principalType, t) }
func (v *principalVal) Equal(o ref.Val) ref.Val          { return types.Bool(o == ref.Val(v)) }
func (v *principalVal) Type() ref.Type                   { return principalType }
func (v *principalVal) Value() any                       { return v }

func (v *requestVal) ConvertToNative(t reflect.Type) (any, error) {
	return nil, errNoNative(requestTypeName)
}
func (v *requestVal) ConvertToType(t ref.Type) ref.Val { return convertObject(v, requestType, t) }
func (v *requestVal) Equal(o ref.Val) ref.Val          { return types.Bool(o == ref.Val(v)) }
func (v *requestVal) Type() ref.Type                   { return requestType }
func (v *requestVal) Value() any                       { return v }

func convertObject(v ref.Val, own *types.Type, t ref.Type) ref.Val {
	switch t {
	case types.TypeType:
		return own
	case own:
		return v
	}
	return types.NewErr("type conversion error from '%s' to '%s'", own.TypeName(), t.TypeName())
}

type noNativeError string

func (e noNativeError) Error() string { return "expr: " + string(e) + " has no native form" }

func errNoNative(name string) error { return noNativeError(name) }

// The kinds of lazyMap.
const (
	headersMap = iota
	queryMap
	paramsMap
)

// lazyMap is request.headers, request.query or request.params: a map of
// strings looked up in the request itself. A lookup by key, the common
// case, builds nothing; iterating, sizing or comparing the whole map
// builds it once per request.
type lazyMap struct {
	a    *activation
	kind int
	m    traits.Mapper // the built map, when needed
}

var _ traits.Mapper = (*lazyMap)(nil)

// find looks key up without building the map.
func (l *lazyMap) find(key string) (string, bool) {
	ex := l.a.ex
	switch l.kind {
	case headersMap:
		// Names are case-insensitive; the map's keys are lower case, and
		// any spelling of a name finds its values.
		vals := ex.Request.Header[textproto.CanonicalMIMEHeaderKey(key)]
		switch len(vals) {
		case 0:
			return "", false
		case 1:
			return vals[0], true
		}
		return strings.Join(vals, ", "), true
	case queryMap:
		return queryFirst(ex.Request.URL.RawQuery, key)
	default:
		for _, p := range ex.Params {
			if p.Key == key {
				return p.Value, true
			}
		}
		return "", false
	}
}

// queryFirst returns the first value of key in the raw query q, decoded
// as url.ParseQuery would, without parsing the rest. Pairs that do not
// decode are skipped, as ParseQuery skips them.
func queryFirst(q, key string) (string, bool) {
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			var err error
			if v, err = url.QueryUnescape(v); err != nil {
				continue
			}
		}
		return v, true
	}
	return "", false
}

// built returns the whole map, building it on first use.
func (l *lazyMap) built() traits.Mapper {
	if l.m != nil {
		return l.m
	}
	ex := l.a.ex
	var m map[string]string
	switch l.kind {
	case headersMap:
		m = make(map[string]string, len(ex.Request.Header))
		for k, vals := range ex.Request.Header {
			if len(vals) > 0 {
				m[strings.ToLower(k)] = strings.Join(vals, ", ")
			}
		}
	case queryMap:
		vals, _ := url.ParseQuery(ex.Request.URL.RawQuery)
		m = make(map[string]string, len(vals))
		for k, v := range vals {
			m[k] = v[0]
		}
	default:
		m = make(map[string]string, len(ex.Params))
		for _, p := range ex.Params {
			if _, dup := m[p.Key]; !dup {
				m[p.Key] = p.Value
			}
		}
	}
	l.m = types.NewStringStringMap(l.a.adapter, m)
	return l.m
}

// Find implements traits.Mapper.
func (l *lazyMap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		if types.IsUnknownOrError(key) {
			return key, false
		}
		return nil, false
	}
	v, found := l.find(string(k))
	if !found {
		return nil, false
	}
	return str(v), true
}

// Get implements traits.Indexer.
func (l *lazyMap) Get(key ref.Val) ref.Val {
	v, found := l.Find(key)
	if !found {
		if v != nil {
			return v
		}
		return types.NewErrWithNodeID(0, "no such key: %v", key)
	}
	return v
}

// Contains implements traits.Container.
func (l *lazyMap) Contains(key ref.Val) ref.Val {
	v, found := l.Find(key)
	if !found && v != nil {
		return v
	}
	return types.Bool(found)
}

func (l *lazyMap) Size() ref.Val                               { return l.built().Size() }
func (l *lazyMap) Iterator() traits.Iterator                   { return l.built().Iterator() }
func (l *lazyMap) ConvertToNative(t reflect.Type) (any, error) { return l.built().ConvertToNative(t) }
func (l *lazyMap) ConvertToType(t ref.Type) ref.Val            { return l.built().ConvertToType(t) }
func (l *lazyMap) Equal(o ref.Val) ref.Val                     { return l.built().Equal(o) }
func (l *lazyMap) Type() ref.Type                              { return types.MapType }
func (l *lazyMap) Value() any                                  { return l.built().Value() }
