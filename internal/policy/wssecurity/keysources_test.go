package wssecurity

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
	"github.com/gatehouse/gatehouse/internal/wsse"
)

// keySourceConfig is encFixture.config with the gateway's key given by
// keys (the YAML of one keys entry) and further encryption settings.
func keySourceConfig(f *encFixture, keys, extra string) string {
	return f.x509Fixture.config("") +
		"username_token: {text: allowed, users: [{username: alice, password: s3cret}]}\n" +
		"encryption:\n  keys: [" + keys + "]\n" + extra
}

// decryptsWith builds the policy from yaml with store st and has it
// decrypt a message encrypted to the gateway's certificate.
func decryptsWith(t *testing.T, f *encFixture, node func(*testing.T, string) *config.Node, yaml string, st store.Store) {
	t.Helper()
	now := time.Now()
	env := policytest.Env()
	env.Now = func() time.Time { return now.Add(time.Second) }
	env.Store = st
	p, err := Build(node(t, yaml), env)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, yaml)
	}
	doc := utEnc(t, now, false)
	wssEncrypt(t, doc, encOpts{to: f.pub()}, "Body-1")
	out, err := forwarded(t, p, docString(t, doc))
	if err != nil || !strings.Contains(out, "<m:id>p-1001</m:id>") {
		t.Fatalf("err %v, forwarded:\n%s", err, out)
	}
}

func newKEK(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDecryptionKeySources: the gateway's decryption key from a file,
// from the environment (a PEM bundle of key and certificate), and from
// the gateway's store (in memory and in a real Redis), sealed under the
// key-encryption key.
func TestDecryptionKeySources(t *testing.T) {
	f := newEncFixture(t)
	bundle := string(f.gw.KeyPEM(t)) + string(f.gw.CertPEM())
	kek := newKEK(t)
	vars := map[string]string{
		"WSS_TEST_ENC_PEM":   bundle,
		"WSS_TEST_ENC_KEY":   string(f.gw.KeyPEM(t)),
		"WSS_TEST_KEK":       base64.StdEncoding.EncodeToString(kek),
		"WSS_TEST_KEK_WRONG": base64.StdEncoding.EncodeToString(newKEK(t)),
	}
	node := func(t *testing.T, yaml string) *config.Node {
		t.Helper()
		n, err := config.ParseNode(policytest.File, []byte(yaml), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("file", func(t *testing.T) {
		decryptsWith(t, f, node, keySourceConfig(f, "{certificate: "+f.certFile+", key: {file: "+f.keyFile+"}}", ""), store.NewMemory(nil))
	})
	t.Run("env key, file certificate", func(t *testing.T) {
		decryptsWith(t, f, node, keySourceConfig(f, "{certificate: "+f.certFile+", key: {env: WSS_TEST_ENC_KEY}}", ""), store.NewMemory(nil))
	})
	t.Run("env bundle", func(t *testing.T) {
		decryptsWith(t, f, node, keySourceConfig(f, "{key: {env: WSS_TEST_ENC_PEM}}", ""), store.NewMemory(nil))
	})
	stores := map[string]func(t *testing.T) store.Store{
		"memory": func(t *testing.T) store.Store { return store.NewMemory(nil) },
		"redis": func(t *testing.T) store.Store {
			srv := redistest.Start(t)
			st, err := store.NewRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: t.Name() + ":"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
	for name, open := range stores {
		t.Run("store "+name, func(t *testing.T) {
			st := open(t)
			ctx := context.Background()
			if err := wsse.PutEncryptionKey(ctx, st, "gw-enc-1", kek, f.gw.Key.(*rsa.PrivateKey), f.gw.Cert, time.Now()); err != nil {
				t.Fatal(err)
			}
			decryptsWith(t, f, node, keySourceConfig(f, "{store: gw-enc-1}", "  key_encryption_key: {env: WSS_TEST_KEK}\n"), st)

			// What is in the store holds no private key in clear.
			raw, err := st.Get(ctx, wsse.EncryptionKeyPrefix+"gw-enc-1")
			if err != nil {
				t.Fatal(err)
			}
			var rec map[string]any
			if err := json.Unmarshal(raw, &rec); err != nil || rec["sealed"] == nil || strings.Contains(string(raw), "PRIVATE") {
				t.Fatalf("stored record: %s", raw)
			}
			// A wrong key-encryption key, an absent key, and a record
			// moved to another name fail at load, at the field.
			_, err = Build(node(t, keySourceConfig(f, "{store: gw-enc-1}", "  key_encryption_key: {env: WSS_TEST_KEK_WRONG}\n")), envWith(st))
			policytest.WantConfigError(t, err, 6, "encryption.keys[0].store", "does not open with the key-encryption key")
			_, err = Build(node(t, keySourceConfig(f, "{store: gw-enc-9}", "  key_encryption_key: {env: WSS_TEST_KEK}\n")), envWith(st))
			policytest.WantConfigError(t, err, 6, "encryption.keys[0].store", "not found")
			if !errors.Is(err, wsse.ErrEncryptionKey) {
				t.Errorf("error %v does not wrap ErrEncryptionKey", err)
			}
			if err := st.Set(ctx, wsse.EncryptionKeyPrefix+"gw-enc-2", raw, 0); err != nil {
				t.Fatal(err)
			}
			_, err = Build(node(t, keySourceConfig(f, "{store: gw-enc-2}", "  key_encryption_key: {env: WSS_TEST_KEK}\n")), envWith(st))
			policytest.WantConfigError(t, err, 6, "encryption.keys[0].store", "does not open")
		})
	}
}

func envWith(st store.Store) *policy.Env {
	env := policytest.Env()
	env.Store = st
	return env
}

// TestEncryptionConfigProblems: independent problems of the encryption
// block are reported together, each at its line and field.
func TestEncryptionConfigProblems(t *testing.T) {
	f := newEncFixture(t)
	yaml := f.x509Fixture.config("") +
		"username_token: {text: allowed, users: [{username: alice, password: s3cret}]}\n" +
		"encryption:\n" +
		"  keys:\n" +
		"    - {store: 'bad name'}\n" +
		"    - {certificate: x.pem}\n" +
		"  wrap_keys:\n" +
		"    - {name: k, key: AAAA}\n" +
		"  key_cache: -1\n" +
		"  required_parts: [Head]\n" +
		"  forward: reencrypt\n"
	// The line of "encryption:".
	base := strings.Count(f.x509Fixture.config(""), "\n") + 2
	_, err := New(policytest.Node(t, yaml), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: base, Path: "encryption.key_encryption_key"},
		policytest.ConfigErrorAt{Line: base + 2, Path: "encryption.keys[0].store"},
		policytest.ConfigErrorAt{Line: base + 3, Path: "encryption.keys[1]"},
		policytest.ConfigErrorAt{Line: base + 5, Path: "encryption.wrap_keys[0].key"},
		policytest.ConfigErrorAt{Line: base + 6, Path: "encryption.key_cache"},
		policytest.ConfigErrorAt{Line: base + 7, Path: "encryption.required_parts[0]"},
		policytest.ConfigErrorAt{Line: base + 8, Path: "encryption.forward"},
	)
}

// TestConfigProblemsTogether: independent problems in different blocks
// come in one error.
func TestConfigProblemsTogether(t *testing.T) {
	yaml := "timestamp: {max_age: 2h}\n" +
		"username_token:\n  text: sometimes\n  users: [{username: 'a:b', password: pw}]\n" +
		"signature: {max_references: 100}\n" +
		"require: x509\n" +
		"actors: ['']\n"
	_, err := New(policytest.Node(t, yaml), policytest.Env())
	policytest.WantConfigErrors(t, err,
		policytest.ConfigErrorAt{Line: 1, Path: "timestamp.max_age"},
		policytest.ConfigErrorAt{Line: 3, Path: "username_token.text"},
		policytest.ConfigErrorAt{Line: 4, Path: "username_token.users[0].username"},
		policytest.ConfigErrorAt{Line: 5, Path: "signature.max_references"},
		policytest.ConfigErrorAt{Line: 6, Path: "require"},
		policytest.ConfigErrorAt{Line: 7, Path: "actors[0]"},
	)
}
