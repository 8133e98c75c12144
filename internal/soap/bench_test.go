package soap

import (
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

// BenchmarkParse is the firewall scan plus the tree and shape checks of a
// 2 KB SOAP 1.1 request with a WS-Security header; BenchmarkScan is the
// scan alone, BenchmarkTree etree's parse alone, for comparison.
func BenchmarkParse(b *testing.B) {
	data := readRequest(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, xmlscan.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScan(b *testing.B) {
	data := readRequest(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := xmlscan.Scan(data, xmlscan.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func readRequest(b *testing.B) []byte {
	data, err := os.ReadFile("testdata/request-2k.xml")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Parse(data, xmlscan.Limits{}); err != nil {
		b.Fatal(err)
	}
	return data
}
