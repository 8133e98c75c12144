package mtls

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// TestConfigErrorsTogether checks that independent problems are reported
// in one load, each at its place.
func TestConfigErrorsTogether(t *testing.T) {
	yaml := "subject_from: serial\nallowed_subjects: ['', 'a*b']\ntrust_domain: 'Bad Domain'\nrequired_ekus: [client_auth, nope]\n"
	_, err := New(policytest.Node(t, yaml), &authn.Env{Env: policytest.Env()})
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "subject_from"},
		policytest.ConfigErrorAt{Line: 2, Path: "allowed_subjects[0]"},
		policytest.ConfigErrorAt{Line: 2, Path: "allowed_subjects[1]"},
		policytest.ConfigErrorAt{Line: 3, Path: "trust_domain"},
		policytest.ConfigErrorAt{Line: 4, Path: "required_ekus[1]"},
	)
}
