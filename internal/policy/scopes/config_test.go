package scopes

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		path string
		msg  string
	}{
		{"empty", "", 1, "", "needs at least one scope"},
		{"empty mapping", "{}\n", 1, "", "needs at least one scope"},
		{"only empty lists", "all: []\nmethods:\n  GET: []\n", 1, "", "needs at least one scope"},
		{"only realm", "realm: api\n", 1, "", "needs at least one scope"},
		{"unknown field", "all: [a]\nany: true\n", 2, "any", `unknown field "any"`},
		{"all not a list", "all: products\n", 1, "all", "expected a sequence"},
		{"any_of not a bool", "all: [a]\nany_of: sometimes\n", 2, "any_of", ""},
		{"methods not a mapping", "methods: [GET]\n", 1, "methods", ""},
		{"method list not a list", "methods:\n  GET: products:read\n", 2, "methods.GET", "expected a sequence"},
		{"lower-case method", "methods:\n  GET: [a]\n  post: [b]\n", 3, "methods.post", `must be upper case (methods are case-sensitive): "POST"`},
		{"mixed-case method", "methods:\n  Get: [a]\n", 2, "methods.Get", "must be upper case"},
		{"method with space", "methods:\n  \"GE T\": [a]\n", 2, `methods["GE T"]`, "is not an HTTP method token"},
		{"method with slash", "methods:\n  GET/POST: [a]\n", 2, `methods["GET/POST"]`, "is not an HTTP method token"},
		{"empty method", "methods:\n  \"\": [a]\n", 2, `methods[""]`, "is empty"},
		{"duplicate method", "methods:\n  GET: [a]\n  GET: [b]\n", 3, "methods.GET", "duplicate"},
		{"empty scope", "all: [a, \"\"]\n", 1, "all[1]", "empty scope"},
		{"scope with space", "all:\n  - a\n  - \"products read\"\n", 3, "all[1]", `"products read" is not a scope token`},
		{"scope with quote", "methods:\n  GET:\n    - 'a\"b'\n", 3, "methods.GET[0]", "is not a scope token"},
		{"scope with backslash", "methods:\n  GET: ['a\\b']\n", 2, "methods.GET[0]", "is not a scope token"},
		{"scope with non-ascii", "all: [\"lecture:é\"]\n", 1, "all[0]", "is not a scope token"},
		{"duplicate scope", "methods:\n  POST:\n    - w\n    - r\n    - w\n", 5, "methods.POST[2]", `duplicate scope "w"`},
		{"scope not a string", "all: [[a]]\n", 1, "all[0]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

// groups returns each method's requirement, "*" for unlisted methods
// (absent when they are refused).
func (p *compiled) groups() map[string][][]string {
	m := map[string][][]string{}
	if p.other != nil {
		m["*"] = p.other.groups
	}
	for k, r := range p.methods {
		m[k] = r.groups
	}
	return m
}

func TestConfigRequirements(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		want  map[string][][]string
		realm string
	}{
		{
			name:  "all only",
			yaml:  "all: [a, b]\n",
			want:  map[string][][]string{"*": {{"a"}, {"b"}}},
			realm: "", // the route's, filled in by New
		},
		{
			name: "methods merged with all, overlap once",
			yaml: "all: [a]\nmethods:\n  GET: [r, a]\n  POST: [w]\nrealm: products\n",
			want: map[string][][]string{
				"GET":  {{"a"}, {"r"}},
				"HEAD": {{"a"}, {"r"}},
				"POST": {{"a"}, {"w"}},
			},
			realm: "products",
		},
		{
			name: "head listed itself",
			yaml: "methods:\n  GET: [r]\n  HEAD: [h]\n",
			want: map[string][][]string{
				"GET":  {{"r"}},
				"HEAD": {{"h"}},
			},
			realm: "", // the route's, filled in by New
		},
		{
			name: "empty get list still makes head need only all",
			yaml: "all: [a]\nmethods:\n  GET: []\n",
			want: map[string][][]string{
				"GET":  {{"a"}},
				"HEAD": {{"a"}},
			},
			realm: "", // the route's, filled in by New
		},
		{
			name: "any_of keeps lists as groups",
			yaml: "all: [a, b]\nmethods:\n  DELETE: [admin, owner]\n  PUT: []\nany_of: true\n",
			want: map[string][][]string{
				"DELETE": {{"a", "b"}, {"admin", "owner"}},
				"PUT":    {{"a", "b"}},
			},
			realm: "", // the route's, filled in by New
		},
		{
			name: "extension method",
			yaml: "methods:\n  PROPFIND: [dav]\n",
			want: map[string][][]string{
				"PROPFIND": {{"dav"}},
			},
			realm: "", // the route's, filled in by New
		},
		{
			name: "star gives the other methods' scopes",
			yaml: "all: [a]\nmethods:\n  DELETE: [admin]\n  \"*\": [other]\n",
			want: map[string][][]string{
				"*":      {{"a"}, {"other"}},
				"DELETE": {{"a"}, {"admin"}},
			},
			realm: "", // the route's, filled in by New
		},
		{
			name: "empty star lets other methods through with all",
			yaml: "all: [a]\nmethods:\n  DELETE: [admin]\n  \"*\": []\n",
			want: map[string][][]string{
				"*":      {{"a"}},
				"DELETE": {{"a"}, {"admin"}},
			},
			realm: "", // the route's, filled in by New
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := decode(policytest.Node(t, tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(p.groups(), tt.want); diff != "" {
				t.Errorf("requirements (-got +want):\n%s", diff)
			}
			if p.realm != tt.realm {
				t.Errorf("realm = %q, want %q", p.realm, tt.realm)
			}
		})
	}
}

// TestConfigErrorsTogether checks that every bad scope and method is
// reported in one load, each at its place; a method key that is not a
// plain key is spelled as config spells paths.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "all: [read, '', read]\nmethods:\n  get: [a]\n  'GE T': [b c]\n"
	_, err := New(policytest.Node(t, yaml), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "all[1]"},
		policytest.ConfigErrorAt{Line: 1, Path: "all[2]"},
		policytest.ConfigErrorAt{Line: 3, Path: "methods.get"},
		policytest.ConfigErrorAt{Line: 4, Path: `methods["GE T"]`},
		policytest.ConfigErrorAt{Line: 4, Path: `methods["GE T"][0]`},
	)
}
