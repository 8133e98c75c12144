package dlp

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		path, msg  string
	}{
		{"nothing", "max_buffer: 1MiB", 1, "", "no detector"},
		{"unknown field", "credit_cards: {}\ncards: {}", 2, "cards", ""},
		{"bad action", "credit_cards:\n  action: drop", 2, "credit_cards.action", `"drop" is not mask, block or log`},
		{"unknown detector field", "ibans:\n  iin: true", 2, "ibans.iin", ""},
		{"unknown kind", "access_tokens:\n  kinds: [jwt, stripe]", 2, "access_tokens.kinds[1]", `unknown kind "stripe"`},
		{"twice", "national_ids: {kinds: [us_ssn, us_ssn]}", 1, "national_ids.kinds[1]", "twice"},
		{"bad regexp", "custom:\n  - name: x\n    pattern: 'a(b'", 3, "custom[0].pattern", "missing closing )"},
		{"custom no name", "custom:\n  - pattern: 'ab'", 2, "custom[0]", "needs a name"},
		{"custom duplicate name", "credit_cards: {}\ncustom:\n  - {name: credit_card, pattern: x}", 3, "custom[0].name", "used twice"},
		{"custom max_length", "custom:\n  - {name: x, pattern: x, max_length: 1000000}", 2, "custom[0].max_length", "between 1 and"},
		{"content type", "credit_cards: {}\ncontent_types: [json]", 2, "content_types[0]", "not type/subtype"},
		{"empty content types", "credit_cards: {}\ncontent_types: []", 2, "content_types", "scans nothing"},
		{"max_buffer", "credit_cards: {}\nmax_buffer: 10B", 2, "max_buffer", "between 1KiB"},
		{"oversize", "credit_cards: {}\noversize: pass", 2, "oversize", `"pass" is not block or mask`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(policytest.Node(t, tt.yaml), policytest.Env())
			policytest.WantConfigError(t, err, tt.line, tt.path, tt.msg)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	d := mustNew(t, "credit_cards: {}\naccess_tokens: {action: block}")
	var names []string
	for _, det := range d.s.dets {
		names = append(names, det.name+":"+det.action.String())
	}
	want := "credit_card:mask jwt:block aws_access_key:block github_token:block slack_token:block"
	if got := join(names); got != want {
		t.Errorf("detectors %s, want %s", got, want)
	}
	if !d.blocking || d.s.maxBuffer != 1<<20 || d.s.oversize != actBlock || d.Window() != jwtMaxLen+1 {
		t.Errorf("blocking %v, max_buffer %d, oversize %v, window %d", d.blocking, d.s.maxBuffer, d.s.oversize, d.Window())
	}
	if d := mustNew(t, "credit_cards:\nibans:"); len(d.s.dets) != 2 {
		t.Errorf("detectors given as null: got %d, want 2 on", len(d.s.dets))
	}
	if d := mustNew(t, "credit_cards: {}"); d.blocking || d.Window() != cardMaxLen+1 {
		t.Errorf("cards only: blocking %v, window %d", d.blocking, d.Window())
	}
}

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}

// TestConfigErrorsTogether checks that validate reports independent
// problems in one load, each at its place.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "credit_cards: {action: drop}\n" +
		"access_tokens: {kinds: [jwt, stripe]}\n" +
		"custom:\n" +
		"  - {name: credit_card, pattern: 'a(b', max_length: -1}\n" +
		"max_buffer: 10B\n" +
		"oversize: pass\n"
	_, err := New(policytest.Node(t, yaml), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "credit_cards.action"},
		policytest.ConfigErrorAt{Line: 2, Path: "access_tokens.kinds[1]"},
		policytest.ConfigErrorAt{Line: 4, Path: "custom[0].name"},
		policytest.ConfigErrorAt{Line: 4, Path: "custom[0].pattern"},
		policytest.ConfigErrorAt{Line: 4, Path: "custom[0].max_length"},
		policytest.ConfigErrorAt{Line: 5, Path: "max_buffer"},
		policytest.ConfigErrorAt{Line: 6, Path: "oversize"},
	)
}
