// Package users reads the authorization server's users file: the people
// who may log in at its login page, each with an argon2id password hash
// (PHC string format) and the claims the server puts into their ID tokens
// and userinfo responses.
//
// The file is YAML, decoded strictly: an unknown field, a duplicate user
// or a malformed hash is an error naming the file and line.
//
//	users:
//	  - username: alice
//	    password_hash: $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH
//	    name: Alice Example
//	    email: alice@example.com
//	    email_verified: true
//	    groups: [staff]
//
// `gatehouse users add` appends an entry.
package users

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/argon2"
)

// User is one entry of the users file.
type User struct {
	// Username is what the user types at the login page. Required,
	// unique, without spaces or control characters.
	Username string `yaml:"username"`
	// Subject is the stable sub claim of the user's tokens. Default: the
	// username.
	Subject string `yaml:"sub"`
	// PasswordHash is the argon2id PHC string of the password. Required.
	PasswordHash string `yaml:"password_hash"`
	// Name, Email, EmailVerified and Groups are the user's profile
	// claims, given to clients granted the profile, email or groups
	// scope.
	Name          string   `yaml:"name"`
	Email         string   `yaml:"email"`
	EmailVerified bool     `yaml:"email_verified"`
	Groups        []string `yaml:"groups"`
	// Disabled users cannot log in (their entries stay, so that the sub
	// is not given to someone else).
	Disabled bool `yaml:"disabled"`

	hash *Hash
	line int
}

// Line is the line of the users file where the entry starts.
func (u *User) Line() int { return u.line }

// Sub is the subject identifier of the user.
func (u *User) Sub() string {
	if u.Subject != "" {
		return u.Subject
	}
	return u.Username
}

// CheckPassword reports whether password is the user's. Its time does not
// depend on where a wrong password differs.
func (u *User) CheckPassword(password string) bool { return u.hash.Verify(password) }

type file struct {
	Users []yaml.Node `yaml:"users"`
}

// Set is a loaded users file.
type Set struct {
	path   string
	byName map[string]*User
	bySub  map[string]*User
	list   []*User
}

// Error is a problem in the users file, at a line.
type Error struct {
	Path string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// Load reads and checks the users file at path.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse checks the users file data; path only names it in errors.
func Parse(path string, data []byte) (*Set, error) {
	s := &Set{path: path, byName: map[string]*User{}, bySub: map[string]*User{}}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return s, nil
		}
		return nil, yamlError(path, err)
	}
	for i := range f.Users {
		n := &f.Users[i]
		u := &User{line: n.Line}
		d := nodeDecoder(n)
		if err := d.Decode(u); err != nil {
			return nil, yamlError(path, err)
		}
		fail := func(format string, args ...any) error {
			return &Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("users[%d]: ", i) + fmt.Sprintf(format, args...)}
		}
		if err := CheckUsername(u.Username); err != nil {
			return nil, fail("username: %v", err)
		}
		if first, dup := s.byName[u.Username]; dup {
			return nil, fail("duplicate username %q (first at line %d)", u.Username, first.line)
		}
		if u.PasswordHash == "" {
			return nil, fail("password_hash: required field is missing (make one with gatehouse users add)")
		}
		var err error
		if u.hash, err = ParseHash(u.PasswordHash); err != nil {
			return nil, fail("password_hash: %v", err)
		}
		if first, dup := s.bySub[u.Sub()]; dup {
			return nil, fail("duplicate sub %q (first at line %d)", u.Sub(), first.line)
		}
		s.byName[u.Username] = u
		s.bySub[u.Sub()] = u
		s.list = append(s.list, u)
	}
	return s, nil
}

// nodeDecoder decodes one node strictly: yaml.Node.Decode does not refuse
// unknown fields, so the node is re-encoded and decoded with KnownFields,
// keeping its line numbers by encoding the whole document around it.
func nodeDecoder(n *yaml.Node) *strictNode { return &strictNode{n} }

type strictNode struct{ n *yaml.Node }

func (s *strictNode) Decode(u *User) error {
	if s.n.Kind != yaml.MappingNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a user must be a mapping", s.n.Line)}}
	}
	known := map[string]bool{"username": true, "sub": true, "password_hash": true, "name": true, "email": true,
		"email_verified": true, "groups": true, "disabled": true}
	for i := 0; i+1 < len(s.n.Content); i += 2 {
		k := s.n.Content[i]
		if !known[k.Value] {
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: field %s not found in type users.User", k.Line, k.Value)}}
		}
		for j := 0; j < i; j += 2 {
			if s.n.Content[j].Value == k.Value {
				return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: field %s repeated", k.Line, k.Value)}}
			}
		}
	}
	return s.n.Decode(u)
}

// yamlError turns a yaml error ("yaml: line 3: ...") into path:3: ....
func yamlError(path string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ":"); ok {
			if n, err := strconv.Atoi(num); err == nil {
				return &Error{Path: path, Line: n, Msg: strings.TrimSpace(tail)}
			}
		}
	}
	return &Error{Path: path, Msg: msg}
}

// CheckUsername says what is wrong with a username, if anything.
func CheckUsername(name string) error {
	switch {
	case name == "":
		return errors.New("required field is missing")
	case len(name) > 128:
		return errors.New("longer than 128 bytes")
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("%q has spaces or control characters", name)
	}
	return nil
}

// Lookup returns the user with username name.
func (s *Set) Lookup(name string) (*User, bool) {
	if s == nil {
		return nil, false
	}
	u, ok := s.byName[name]
	return u, ok
}

// BySub returns the user whose subject is sub.
func (s *Set) BySub(sub string) (*User, bool) {
	if s == nil {
		return nil, false
	}
	u, ok := s.bySub[sub]
	return u, ok
}

// Len is the number of users.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.list)
}

// Authenticate checks a username and password. An unknown or disabled
// user costs one password hash too, so that the answer's time does not
// tell which usernames exist.
func (s *Set) Authenticate(name, password string) (*User, bool) {
	u, ok := s.Lookup(name)
	if !ok || u.Disabled {
		dummy.Verify(password)
		return nil, false
	}
	if !u.CheckPassword(password) {
		return nil, false
	}
	return u, true
}

// dummy is verified for unknown users: the default parameters with a
// random salt and hash, which no password matches. It is not the hash of
// a password because computing one at start-up costs every gatehouse
// command 50 ms and 19 MiB before it does anything.
var dummy = &Hash{time: DefaultTime, memory: DefaultMemory, threads: DefaultThreads, salt: randomBytes(16), hash: randomBytes(32)}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// Hash is a parsed argon2id PHC string.
type Hash struct {
	time, memory uint32
	threads      uint8
	salt, hash   []byte
}

// Limits on argon2id parameters read from a file, so that a typo cannot
// make every login cost gigabytes.
const (
	maxMemory = 256 << 10 // KiB
	maxTime   = 16
)

// Default parameters: the OWASP minimum for argon2id (19 MiB, 2 passes,
// 1 thread).
const (
	DefaultMemory  = 19456
	DefaultTime    = 2
	DefaultThreads = 1
)

// ParseHash parses "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" (unpadded
// standard base64 salt and hash).
func ParseHash(s string) (*Hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v=19" {
		return nil, errors.New(`want an argon2id PHC string "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH"`)
	}
	a := &Hash{}
	seen := map[string]bool{}
	for kv := range strings.SplitSeq(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || seen[k] {
			return nil, fmt.Errorf("bad parameter %q", kv)
		}
		seen[k] = true
		switch k {
		case "m":
			a.memory = uint32(n)
		case "t":
			a.time = uint32(n)
		case "p":
			if n > 255 {
				return nil, fmt.Errorf("bad parameter %q", kv)
			}
			a.threads = uint8(n)
		default:
			return nil, fmt.Errorf("unknown parameter %q", kv)
		}
	}
	if a.memory < 8 || a.time == 0 || a.threads == 0 || a.memory > maxMemory || a.time > maxTime {
		return nil, fmt.Errorf("parameters must be m 8-%d, t 1-%d, p 1-255", maxMemory, maxTime)
	}
	var err error
	if a.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(a.salt) < 8 {
		return nil, errors.New("bad salt (unpadded base64, at least 8 bytes)")
	}
	if a.hash, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(a.hash) < 16 {
		return nil, errors.New("bad hash (unpadded base64, at least 16 bytes)")
	}
	return a, nil
}

// slots bounds the argon2id checks running at once: each takes its memory
// parameter, and a burst of logins would otherwise spend it all before the
// failure budgets count them.
var slots = make(chan struct{}, max(2, runtime.NumCPU()))

// Verify reports whether password matches.
func (a *Hash) Verify(password string) bool {
	slots <- struct{}{}
	defer func() { <-slots }()
	got := argon2.IDKey([]byte(password), a.salt, a.time, a.memory, a.threads, uint32(len(a.hash)))
	return subtle.ConstantTimeCompare(got, a.hash) == 1
}

// HashPassword returns the argon2id PHC string of password with the
// default parameters and a random 16-byte salt.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	h := argon2.IDKey([]byte(password), salt, DefaultTime, DefaultMemory, DefaultThreads, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", DefaultMemory, DefaultTime, DefaultThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(h)), nil
}

// Add appends a user to the users file at path (creating it with mode
// 0600 when absent), keeping its other entries and comments. The file is
// checked before and after: a duplicate username is an error and nothing
// is written.
func Add(path string, u User) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	cur, err := Parse(path, data)
	if err != nil {
		return err
	}
	if _, dup := cur.Lookup(u.Username); dup {
		return &Error{Path: path, Msg: fmt.Sprintf("user %q already exists", u.Username)}
	}
	var doc yaml.Node
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return yamlError(path, err)
		}
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return &Error{Path: path, Line: root.Line, Msg: "the users file must be a mapping with a users list"}
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "users" {
			list = root.Content[i+1]
		}
	}
	if list == nil || (list.Kind == yaml.ScalarNode && list.Tag == "!!null") {
		if list == nil {
			list = &yaml.Node{}
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "users"}, list)
		}
		*list = yaml.Node{Kind: yaml.SequenceNode}
	}
	var entry yaml.Node
	if err := entry.Encode(u); err != nil {
		return err
	}
	// Drop empty optional fields from the new entry.
	var kept []*yaml.Node
	for i := 0; i+1 < len(entry.Content); i += 2 {
		v := entry.Content[i+1]
		if (v.Kind == yaml.ScalarNode && (v.Value == "" || v.Value == "false")) || (v.Kind == yaml.SequenceNode && len(v.Content) == 0) {
			continue
		}
		kept = append(kept, entry.Content[i], v)
	}
	entry.Content = kept
	list.Content = append(list.Content, &entry)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	enc.Close()
	if _, err := Parse(path, buf.Bytes()); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Usernames lists the usernames in file order.
func (s *Set) Usernames() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.list))
	for _, u := range s.list {
		out = append(out, u.Username)
	}
	return slices.Clip(out)
}

// EncodeFor returns the base64 hash of password under a's parameters and
// salt: the last field of its PHC string (tests and benchmarks make
// hashes with chosen parameters with it).
func (a *Hash) EncodeFor(password string) string {
	return base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte(password), a.salt, a.time, a.memory, a.threads, uint32(len(a.hash))))
}
