package config

import "testing"

// TestMayHaveKey: false only where decoding the node could not find the
// key.
func TestMayHaveKey(t *testing.T) {
	tests := []struct {
		name, src string
		want      bool
	}{
		{"has it", "{realm: api, x: 1}", true},
		{"quoted", `{"realm": api}`, true},
		{"other keys", "{x: 1, y: {realm: api}}", false},
		{"empty mapping", "{}", false},
		{"merge key", "base: &b {realm: api}\nm: {<<: *b}", true},
		{"scalar", "realm", false},
		{"sequence", "[realm]", false},
		{"null", "~", false},
		{"empty document", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ParseNode("t.yaml", []byte(tc.src), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "merge key" {
				var v struct {
					Base *Node `yaml:"base"`
					M    *Node `yaml:"m"`
				}
				if err := n.Decode(&v); err != nil {
					t.Fatal(err)
				}
				n = v.M
			}
			if got := n.MayHaveKey("realm"); got != tc.want {
				t.Errorf("MayHaveKey = %v, want %v", got, tc.want)
			}
			// Where it says no, decoding agrees.
			var m map[string]any
			if err := n.Decode(&m); err == nil && m["realm"] != nil && !tc.want {
				t.Errorf("MayHaveKey said no, Decode found %v", m["realm"])
			}
		})
	}
	var nilNode *Node
	if nilNode.MayHaveKey("realm") || releasedNode.MayHaveKey("realm") {
		t.Error("a nil or released node may have a key")
	}
}
