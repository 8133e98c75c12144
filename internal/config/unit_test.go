package config

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestIndex(t *testing.T) {
	if got := Index("allow", 2); got != "allow[2]" {
		t.Errorf("Index = %q", got)
	}
	if got := Index("custom[1].kinds", 0); got != "custom[1].kinds[0]" {
		t.Errorf("Index = %q", got)
	}
}

func TestResolvePath(t *testing.T) {
	n, err := ParseNode(filepath.Join("conf", "gw.yaml"), []byte("a: 1\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(string(filepath.Separator), "etc", "k.pem")
	for _, c := range []struct {
		node *Node
		in   string
		want string
	}{
		{n, "k.pem", filepath.Join("conf", "k.pem")},
		{n, "../k.pem", "k.pem"},
		{n, abs, abs},
		{n, "", ""},
		{nil, "k.pem", "k.pem"},
	} {
		if got := c.node.ResolvePath(c.in); got != c.want {
			t.Errorf("ResolvePath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestProblems(t *testing.T) {
	n, err := ParseNode("p.yaml", []byte("a: 1\nb: x\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var p Problems
	if p.Add(nil) || p.Err() != nil {
		t.Fatal("empty Problems reports an error")
	}
	p.Errorf(n, "b", "bad b")
	if !p.Add(n.Errorf("a", "bad a")) {
		t.Fatal("Add(non-nil) = false")
	}
	var out struct {
		A string `yaml:"a"`
	}
	p.Add(n.Decode(&out)) // unknown key b
	err = p.Err()
	var es Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Fatalf("Err = %v, want 3 positioned errors", err)
	}
	if es[0].Line != 1 || es[0].Path != "a" {
		t.Errorf("first problem %+v, want line 1 at a (file order)", es[0])
	}
	p.Add(errors.New("plain"))
	if err := p.Err(); err == nil || p.Len() != 4 {
		t.Errorf("unpositioned error dropped: %v (len %d)", err, p.Len())
	}
}
