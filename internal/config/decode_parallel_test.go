package config

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// TestParallelDecodeMatchesSequential decodes a long routes list, with
// errors scattered through it, in pieces and in one piece: the configs
// must be equal and the errors the same, in the same order.
func TestParallelDecodeMatchesSequential(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	// Items with errors of several kinds, in different pieces.
	bad := map[int]string{
		3:    "  - name: r3\n    bogus_field: 1\n    upstream: {url: \"http://127.0.0.1:1\"}\n",
		700:  "  - name: r700\n    soap_fault_status: [1]\n    upstream: {url: \"http://127.0.0.1:1\"}\n",
		701:  "  - name: r701\n    upstream: {url: 7, timeout: forever}\n",
		1024: "  - name: r1024\n    match: {methods: GET, path_prefix: [x]}\n",
		1999: "  - name: [r1999]\n    policies: {ipfilter: 1}\n",
	}
	var b strings.Builder
	b.WriteString("listeners: [{name: main, address: \"127.0.0.1:0\"}]\nroutes:\n")
	for i := range 2000 {
		if item, ok := bad[i]; ok {
			b.WriteString(item)
			continue
		}
		fmt.Fprintf(&b, scaleItem, i, i%7, i%3)
	}
	data := []byte(b.String())

	d := newDoc("big.yaml", os.LookupEnv)
	root, aliased, errs := parseDocument("big.yaml", data, false)
	if root == nil {
		t.Fatalf("parse: %v", errs)
	}
	if errs = append(errs, expandTree(root, d, aliased)...); len(errs) > 0 {
		t.Fatal(errs)
	}
	// Both decode the same tree, so that the Nodes they keep are equal.
	decode := func(items int) (*Config, Errors) {
		defer func(n int) { parallelItems = n }(parallelItems)
		parallelItems = items
		var c Config
		dc := &decoder{d: d, strs: make(map[string]string)}
		dc.value(root, nil, "", reflect.ValueOf(&c).Elem())
		return &c, dc.errs
	}
	seqCfg, seqErrs := decode(math.MaxInt)
	parCfg, parErrs := decode(512)
	if len(seqErrs) < len(bad) {
		t.Fatalf("only %d errors for %d bad routes: %v", len(seqErrs), len(bad), seqErrs)
	}
	if fmt.Sprint(parErrs) != fmt.Sprint(seqErrs) {
		t.Errorf("decoded in pieces, errors\n%v\nwant\n%v", parErrs, seqErrs)
	}
	if len(parCfg.Routes) != 2000 || !reflect.DeepEqual(parCfg.Routes, seqCfg.Routes) {
		t.Errorf("decoded in pieces, %d routes differ from the %d decoded in one piece", len(parCfg.Routes), len(seqCfg.Routes))
	}
}
