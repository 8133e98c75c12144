package dlp

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// scanFunc is a detector's scan.
type scanFunc = func(b []byte, lo, hi int, found func(s, e int))

// scanPairs are the detectors rewritten for speed, each with its
// reference (detect_ref_test.go).
var scanPairs = []struct {
	name     string
	cur, ref scanFunc
}{
	{"cards", scanCards(false), refScanCards(false)},
	{"cards_iin", scanCards(true), refScanCards(true)},
	{"ibans", scanIBANs, refScanIBANs},
	{"ssns", scanSSNs, refScanSSNs},
	{"ninos", scanNINOs, refScanNINOs},
	{"aws", scanKeys(awsFormats), refScanKeys(awsFormats)},
	{"github", scanKeys(githubFormats), refScanKeys(githubFormats)},
	{"slack", scanKeys(slackFormats), refScanKeys(slackFormats)},
	{"private_keys", scanPrivateKeys(200), refScanPrivateKeys(200)},
	{"jwts", scanJWTs, refScanJWTs},
}

// matches runs scan over b[lo:hi] and returns what it found, in order.
func matches(scan scanFunc, b []byte, lo, hi int) [][2]int {
	var out [][2]int
	scan(b, lo, hi, func(s, e int) { out = append(out, [2]int{s, e}) })
	return out
}

// sameMatches checks every pair on b (whose first byte is context) over
// the whole of it and over lo/hi ranges cut at random, as the scanner's
// window cuts them.
func sameMatches(t *testing.T, rng *rand.Rand, b []byte) {
	t.Helper()
	if len(b) < 2 {
		return
	}
	ranges := [][2]int{{1, len(b)}}
	for range 3 {
		lo := 1 + rng.IntN(len(b)-1)
		hi := lo + rng.IntN(len(b)-lo+1)
		ranges = append(ranges, [2]int{lo, hi})
	}
	for _, p := range scanPairs {
		for _, r := range ranges {
			got, want := matches(p.cur, b, r[0], r[1]), matches(p.ref, b, r[0], r[1])
			if !slices.Equal(got, want) {
				t.Fatalf("%s on %q [%d:%d]: found %v, the reference %v", p.name, b, r[0], r[1], got, want)
			}
		}
	}
}

// fragments are the pieces realistic and adversarial inputs are made of:
// valid and near-valid values of every kind, their separators, and the
// JSON and text around them.
var fragments = []string{
	"4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005",
	"4111111111111112", "41111111111111110000", "411111111111", "6011000990139424",
	"4", "1", "0", "12", "123", "1234", " ", "-", "  ", "--", ".", ",", ":", "[", "\"",
	"DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432",
	"DE88370400440532013000", "DE", "GB", "NO9386011117947", "XX12",
	"123-45-6789", "000-45-6789", "666-45-6789", "123-00-6789", "123-45-0000", "1234-56-7890",
	"AB123456C", "AB 12 34 56 C", "QQ123456C", "AB123456E", "BG123456A", "AB 12 3456 C",
	"AKIAIOSFODNN7EXAMPLE", "ASIAIOSFODNN7EXAMPLE", "AKIA", "AKIAAKIAIOSFODNN7EXAMPLE",
	"ghp_" + strings.Repeat("aB3", 12), "gho_" + strings.Repeat("x", 36), "github_pat_" + strings.Repeat("A1_", 27) + "z",
	"ghp_", "gh", "xoxb-123456789012-abcdefghij", "xoxp-1-2-3-4-5-6-7-8-9", "xox", "xoxb-", "_",
	`{"id":"1024","name":"Espresso Machine","price":249.9,"currency":"EUR","created":"2025-01-02T03:04:05Z"}`,
	"Lorem ipsum dolor sit amet, ", "\n", "\t", "é", "\xff", "\x00", "a", "Z", "z9",
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl", "eyJ", "J", "e", "ey", "eyJeyJ", ".eyJ",
	"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN ",
	"-----BEGIN CERTIFICATE-----", "-----END PRIVATE KEY-----", "B", "-----", "BEGIN ",
}

// randomInput joins fragments and random bytes biased to digits,
// capitals and separators.
func randomInput(rng *rand.Rand) []byte {
	const alphabet = "0123456789 -ABDEGKNQZ_ab.:\"xoh"
	var b strings.Builder
	b.WriteByte(" \"a.-:4"[rng.IntN(7)]) // the context byte
	for n := rng.IntN(40); n > 0; n-- {
		if rng.IntN(3) == 0 {
			for k := rng.IntN(20); k > 0; k-- {
				b.WriteByte(alphabet[rng.IntN(len(alphabet))])
			}
		} else {
			b.WriteString(fragments[rng.IntN(len(fragments))])
		}
	}
	return []byte(b.String())
}

// The fast detectors find exactly what the reference ones find, on
// random mixes of values, near-values and filler, over random ranges.
func TestDetectorsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		sameMatches(t, rng, randomInput(rng))
	}
	// Realistic bodies: the benchmark's products, and the same with
	// findings at every offset.
	body := []byte(" " + strings.Repeat(products, 4))
	sameMatches(t, rng, body)
	for _, f := range fragments[:40] {
		for at := 1; at < 300; at += 7 {
			b := slices.Concat(body[:at], []byte(f), body[at:])
			sameMatches(t, rng, b)
		}
	}
}

func FuzzDetectorsMatchReference(f *testing.F) {
	for _, s := range fragments {
		f.Add(" " + s)
	}
	f.Add(" " + products)
	f.Fuzz(func(t *testing.T, s string) {
		sameMatches(t, rand.New(rand.NewPCG(uint64(len(s)), 7)), []byte(s))
	})
}

// BenchmarkDetectors compares each fast detector with its reference on
// the benchmark's 1KB of product JSON, of a numeric time series and of
// digit runs just too short for a card, in one run (MB/s per detector).
func BenchmarkDetectors(b *testing.B) {
	// short: 12-digit strings, runs one byte shorter than a card's
	// shortest: the run search follows nearly every one for nothing.
	short := "[" + strings.Repeat(`"123456789012",`, 1000/15) + "0]"
	for _, body := range []struct{ name, s string }{{"products", products}, {"series", series}, {"short", short}} {
		in := []byte(" " + body.s)
		for _, p := range scanPairs {
			for _, v := range []struct {
				name string
				scan scanFunc
			}{{"ref", p.ref}, {"fast", p.cur}} {
				b.Run(body.name+"/"+p.name+"/"+v.name, func(b *testing.B) {
					b.SetBytes(int64(len(in)))
					for b.Loop() {
						v.scan(in, 1, len(in), func(int, int) {})
					}
				})
			}
		}
	}
}
