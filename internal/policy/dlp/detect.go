package dlp

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"regexp"
)

// A detector finds one kind of sensitive value. scan reports, through
// found, every match whose start s is in [lo, hi) of b, in increasing
// order of s; a match may end anywhere up to len(b). b[lo-1] exists (the
// scanner keeps one byte of context before lo), so boundary checks may
// look one byte back. A detector's matches are at most maxLen bytes long:
// the scanner keeps that much of the stream back so that a match split
// across writes is seen whole.
type detector struct {
	name   string
	action action
	maxLen int
	scan   func(b []byte, lo, hi int, found func(s, e int))
	// mask overwrites the match b[s:e] with a mask of the same length;
	// b[:s] is context it may read (at least one byte).
	mask func(b []byte, s, e int)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return alnum[c] }

// alnum is isAlnum as a table: the card scanner steps over whole words
// with it.
var alnum = func() (t [256]bool) {
	for c := range 256 {
		t[c] = isDigit(byte(c)) || isUpper(byte(c)) || (c >= 'a' && c <= 'z')
	}
	return t
}()

// The fast scanners test eight bytes at a time (SWAR): lanes returns, for
// the little-endian word x of b[i:i+8], 0x80 in the byte lane of every
// byte c with lo < c < hi (bounds exclusive, both at most 0x80), else 0.
// It is exact per lane: no carry or borrow crosses lanes because the high
// bit of each byte is masked off before the arithmetic and tested apart
// (bytes >= 0x80 are in no range). See "Bit Twiddling Hacks", hasbetween.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

func lanes(x uint64, lo, hi uint64) uint64 {
	t := x & (lsb * 0x7f)
	return (lsb*(127+hi) - t) & ^x & (t + lsb*(127-lo)) & msb
}

// digitLanes marks '0'-'9'; upperLanes 'A'-'Z'; spaceLanes ' '.
func digitLanes(x uint64) uint64 { return lanes(x, '0'-1, '9'+1) }
func upperLanes(x uint64) uint64 { return lanes(x, 'A'-1, 'Z'+1) }
func spaceLanes(x uint64) uint64 { return lanes(x, ' '-1, ' '+1) }

// word loads b[i:i+8] little-endian; the caller checks i+8 <= len(b).
func word(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i : i+8]) }
func isB64URL(c byte) bool        { return isAlnum(c) || c == '-' || c == '_' }

// Credit cards ------------------------------------------------------------

const cardMaxLen = 19 + 18 // 19 digits, a separator between each pair

// scanCards finds 13 to 19 digit numbers, optionally grouped by single
// spaces or dashes, that pass the Luhn check (and, with iin, start like a
// card network's number). A run of groups ("4111 1111 1111 1111 5500 ...")
// is searched for the longest such number starting at each group; an
// ungrouped run of more than 19 digits (an order id, a timestamp) is not a
// card number and is skipped whole.
func scanCards(iin bool) func(b []byte, lo, hi int, found func(s, e int)) {
	return func(b []byte, lo, hi int, found func(s, e int)) {
		// A number, its groups and their separators lie within a run of
		// digits, spaces and dashes holding at least 13 digits, so at
		// least 13 bytes long: nextRun finds those runs looking at one
		// byte in 13 outside them, and only runs with 13 digits are
		// searched (digitsIn for a run of digits only, else cardsIn).
		// Digits before lo are not counted: a match starts at lo or
		// after. A run that starts before hi is followed to its end.
		for from := lo; ; {
			rs, re := nextRun(b, from, hi, 13, &cardRunByte)
			if rs < 0 {
				return
			}
			switch nd := countDigits(b[rs:re]); {
			case nd == re-rs:
				digitsIn(b, rs, re, lo, iin, found)
			case nd >= 13:
				cardsIn(b, rs, re, lo, hi, iin, found)
			}
			from = re + 1
		}
	}
}

// cardRunByte marks the bytes of a run a card number may be in: digits,
// spaces and dashes.
var cardRunByte = byteClass(func(c byte) bool { return isDigit(c) || c == ' ' || c == '-' })

// byteClass is the table of a class of bytes.
func byteClass(in func(c byte) bool) (t [256]bool) {
	for c := range 256 {
		t[c] = in(byte(c))
	}
	return t
}

// nextRun returns the first maximal run b[rs:re] of bytes in class, cut
// at from (rs >= from), that is at least minLen bytes long and starts
// before hi; rs is -1 if there is none.
//
// Every such run holds one of the bytes minLen apart counted from
// from+minLen-1: those are looked at, and a run is followed only from
// one in class. Text with few bytes in class is skimmed at a byte in
// minLen.
func nextRun(b []byte, from, hi, minLen int, class *[256]bool) (rs, re int) {
	q := from + minLen - 1
	for q < len(b) {
		if !class[b[q]] {
			if q >= hi {
				return -1, -1 // a run holding a later byte starts after q
			}
			q += minLen
			continue
		}
		// The byte minLen before q, if at from or after, is outside the
		// class: the run starts after it.
		rs = q
		for rs > from && class[b[rs-1]] {
			rs--
		}
		if rs >= hi {
			return -1, -1
		}
		re = q + 1
		for re < len(b) && class[b[re]] {
			re++
		}
		if re-rs >= minLen {
			return rs, re
		}
		// Too short; b[re] is outside the class: start again after it.
		from = re + 1
		q = from + minLen - 1
	}
	return -1, -1
}

// inRuns returns a detector's scan that runs scan over the runs of bytes
// in class at least minLen long only (nextRun): for a detector whose
// every match is such a run's bytes, and so lies in one run, it finds
// what scan finds over [lo, hi).
func inRuns(minLen int, class *[256]bool, scan func(b []byte, lo, hi int, found func(s, e int))) func(b []byte, lo, hi int, found func(s, e int)) {
	return func(b []byte, lo, hi int, found func(s, e int)) {
		for from := lo; ; {
			rs, re := nextRun(b, from, hi, minLen, class)
			if rs < 0 {
				return
			}
			// b[rs-1] exists: rs >= lo.
			scan(b, rs, min(re, hi), found)
			from = re + 1
		}
	}
}

// countDigits is how many bytes of b are digits.
func countDigits(b []byte) int {
	n := 0
	for ; len(b) >= 8; b = b[8:] {
		n += bits.OnesCount64(digitLanes(word(b, 0)))
	}
	for _, c := range b {
		if isDigit(c) {
			n++
		}
	}
	return n
}

// digitsIn is cardsIn for a run of digits only (an id, a timestamp, an
// ungrouped card number), the commonest: its one candidate is the run
// from rs (from lo if the run was cut there), which must follow neither
// a letter, a digit nor a dot, and not be followed by a letter.
func digitsIn(b []byte, rs, re, lo int, iin bool, found func(s, e int)) {
	i := max(rs, lo)
	if n := re - i; n < 13 || n > 19 || isAlnum(b[i-1]) || b[i-1] == '.' || (re < len(b) && isAlnum(b[re])) {
		return
	}
	// 13 to 19 digits from lo, so i < hi: nextRun's run starts before
	// hi, and i is its start or lo.
	if !luhnFast(b[i:re]) {
		return
	}
	if iin {
		var digits [19]byte
		n := copy(digits[:], b[i:re])
		for k := range n {
			digits[k] -= '0'
		}
		if !knownIIN(digits[:n]) {
			return
		}
	}
	found(i, re)
}

// luhnDouble[v] is the sum of the digits of 2v.
var luhnDouble = [16]byte{0, 2, 4, 6, 8, 1, 3, 5, 7, 9}

// luhnFast reports whether the digits pass the Luhn (mod 10) check: the
// reference's luhn, by a table, two digits at a time. The digits are
// values or ASCII: d&15 is the value of either.
func luhnFast(d []byte) bool {
	sum := 0
	for n := len(d); n >= 2; n -= 2 {
		sum += int(d[n-1]&15) + int(luhnDouble[d[n-2]&15])
		d = d[:n-2]
	}
	if len(d) == 1 {
		sum += int(d[0] & 15)
	}
	return sum%10 == 0
}

// cardsIn reports the card numbers starting in b[rs:re] (a run of
// digits, spaces and dashes) and in [lo, hi): the scanner of the
// detector as it was before the runs were found word by word, over the
// run. Numbers are 13 to 19 digits, optionally grouped by single spaces
// or dashes, that pass the Luhn check (and, with iin, start like a card
// network's number). A run of groups is searched for the longest such
// number starting at each group; an ungrouped run of more than 19 digits
// is not a card number and is skipped whole.
func cardsIn(b []byte, rs, re, lo, hi int, iin bool, found func(s, e int)) {
	var groups [40][2]int // digit groups of the run: [start, end)
	for i := max(rs, lo); i < min(re, hi); i++ {
		if !isDigit(b[i]) || isAlnum(b[i-1]) || b[i-1] == '.' {
			continue
		}
		ng, j := 0, i
		for j < len(b) && ng < len(groups) {
			gs := j
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			groups[ng] = [2]int{gs, j}
			ng++
			if j+1 < len(b) && (b[j] == ' ' || b[j] == '-') && isDigit(b[j+1]) && j-gs <= 19 {
				j++
				continue
			}
			break
		}
		runEnd := groups[ng-1][1]
		if runEnd < len(b) && isAlnum(b[runEnd]) {
			i = runEnd - 1
			continue
		}
		for g0 := 0; g0 < ng; {
			if groups[g0][0] >= hi {
				break
			}
			var digits [19]byte
			n, best, bestEnd := 0, -1, 0
			for g1 := g0; g1 < ng; g1++ {
				gs, ge := groups[g1][0], groups[g1][1]
				if n+ge-gs > len(digits) {
					break
				}
				for k := gs; k < ge; k++ {
					digits[n] = b[k] - '0'
					n++
				}
				if n >= 13 && luhnFast(digits[:n]) && (!iin || knownIIN(digits[:n])) {
					best, bestEnd = g1, ge
				}
			}
			if best < 0 {
				g0++
				continue
			}
			found(groups[g0][0], bestEnd)
			g0 = best + 1
		}
		i = runEnd - 1
	}
}

// knownIIN reports whether the number starts like one of the major card
// networks' (Visa, Mastercard, American Express, Discover, JCB, Diners,
// UnionPay, Maestro) with a length that network issues.
func knownIIN(d []byte) bool {
	p := func(k int) int {
		v := 0
		for _, c := range d[:k] {
			v = v*10 + int(c)
		}
		return v
	}
	n := len(d)
	switch {
	case d[0] == 4: // Visa
		return n == 13 || n == 16 || n == 19
	case p(2) >= 51 && p(2) <= 55, p(4) >= 2221 && p(4) <= 2720: // Mastercard
		return n == 16
	case p(2) == 34 || p(2) == 37: // Amex
		return n == 15
	case p(4) == 6011, p(2) == 65, p(3) >= 644 && p(3) <= 649: // Discover
		return n >= 16
	case p(4) >= 3528 && p(4) <= 3589: // JCB
		return n >= 16
	case p(3) >= 300 && p(3) <= 305, p(2) == 36, p(2) == 38, p(2) == 39: // Diners
		return n >= 14
	case p(2) == 62: // UnionPay
		return n >= 16
	case p(2) == 50, p(2) >= 56 && p(2) <= 58, d[0] == 6: // Maestro
		return n >= 12
	}
	return false
}

// maskCard masks a card number with maskKeepLast4, except a bare JSON
// number (after ':', ',' or '['), whose masked digits become '0' after an
// unchanged first digit so that the document stays valid JSON.
func maskCard(b []byte, s, e int) {
	i := s - 1
	for i > 0 && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i--
	}
	if c := b[i]; c != ':' && c != ',' && c != '[' {
		maskKeepLast4(b, s, e)
		return
	}
	for j := s + 1; j < e-4; j++ {
		if isDigit(b[j]) {
			b[j] = '0'
		}
	}
}

// maskKeepLast4 replaces every letter and digit but the last four with
// '*', keeping separators, so the length (and Content-Length) is unchanged.
func maskKeepLast4(b []byte, s, e int) {
	b = b[s:e]
	keep := 4
	for i := len(b) - 1; i >= 0; i-- {
		if !isAlnum(b[i]) {
			continue
		}
		if keep > 0 {
			keep--
			continue
		}
		b[i] = '*'
	}
}

// IBAN --------------------------------------------------------------------

const ibanMaxLen = 34 + 8 // 34 characters, printed in groups of four

// ibanLengths is the IBAN length of each country in the SWIFT IBAN
// registry.
var ibanLengths = map[[2]byte]int{
	{'A', 'D'}: 24, {'A', 'E'}: 23, {'A', 'L'}: 28, {'A', 'T'}: 20, {'A', 'Z'}: 28,
	{'B', 'A'}: 20, {'B', 'E'}: 16, {'B', 'G'}: 22, {'B', 'H'}: 22, {'B', 'R'}: 29,
	{'B', 'Y'}: 28, {'C', 'H'}: 21, {'C', 'R'}: 22, {'C', 'Y'}: 28, {'C', 'Z'}: 24,
	{'D', 'E'}: 22, {'D', 'K'}: 18, {'D', 'O'}: 28, {'E', 'E'}: 20, {'E', 'G'}: 29,
	{'E', 'S'}: 24, {'F', 'I'}: 18, {'F', 'O'}: 18, {'F', 'R'}: 27, {'G', 'B'}: 22,
	{'G', 'E'}: 22, {'G', 'I'}: 23, {'G', 'L'}: 18, {'G', 'R'}: 27, {'G', 'T'}: 28,
	{'H', 'R'}: 21, {'H', 'U'}: 28, {'I', 'E'}: 22, {'I', 'L'}: 23, {'I', 'Q'}: 23,
	{'I', 'S'}: 26, {'I', 'T'}: 27, {'J', 'O'}: 30, {'K', 'W'}: 30, {'K', 'Z'}: 20,
	{'L', 'B'}: 28, {'L', 'C'}: 32, {'L', 'I'}: 21, {'L', 'T'}: 20, {'L', 'U'}: 20,
	{'L', 'V'}: 21, {'L', 'Y'}: 25, {'M', 'C'}: 27, {'M', 'D'}: 24, {'M', 'E'}: 22,
	{'M', 'K'}: 19, {'M', 'R'}: 27, {'M', 'T'}: 31, {'M', 'U'}: 30, {'N', 'L'}: 18,
	{'N', 'O'}: 15, {'P', 'K'}: 24, {'P', 'L'}: 28, {'P', 'S'}: 29, {'P', 'T'}: 25,
	{'Q', 'A'}: 29, {'R', 'O'}: 24, {'R', 'S'}: 22, {'S', 'A'}: 24, {'S', 'C'}: 31,
	{'S', 'D'}: 18, {'S', 'E'}: 24, {'S', 'I'}: 19, {'S', 'K'}: 24, {'S', 'M'}: 27,
	{'S', 'T'}: 25, {'S', 'V'}: 28, {'T', 'L'}: 23, {'T', 'N'}: 24, {'T', 'R'}: 26,
	{'U', 'A'}: 29, {'V', 'A'}: 22, {'V', 'G'}: 24, {'X', 'K'}: 20,
}

// scanIBANs finds IBANs in electronic ("DE89370400440532013000") or
// print ("DE89 3704 0044 0532 0130 00") form with the country's length
// and valid ISO 7064 mod 97-10 check digits.
//
// An IBAN is a run of capitals, digits and spaces at least as long as the
// shortest country's: only such runs are searched (ibansIn).
var scanIBANs = inRuns(ibanMinLen, &ibanRunByte, ibansIn)

// ibanRunByte marks the bytes of an IBAN: capitals, digits, spaces.
var ibanRunByte = byteClass(func(c byte) bool { return isUpper(c) || isDigit(c) || c == ' ' })

// ibanMinLen is the length of the shortest IBAN.
var ibanMinLen = func() int {
	n := 34
	for _, l := range ibanLengths {
		n = min(n, l)
	}
	return n
}()

// ibansIn is scanIBANs on any bytes.
func ibansIn(b []byte, lo, hi int, found func(s, e int)) {
	// Every IBAN starts with two capitals and two digits: eight starts
	// are tested at once, and only those holding that shape are tried.
	next, i := lo, lo
	for ; i < hi && i+11 <= len(b); i += 8 {
		m := upperLanes(word(b, i)) & upperLanes(word(b, i+1))
		if m == 0 {
			continue
		}
		m &= digitLanes(word(b, i+2)) & digitLanes(word(b, i+3))
		for ; m != 0; m &= m - 1 {
			k := i + bits.TrailingZeros64(m)>>3
			if k >= hi {
				return
			}
			if k < next {
				continue
			}
			if e, ok := ibanAt(b, k); ok {
				found(k, e)
				next = e
			}
		}
	}
	for i = max(i, next); i < hi; i++ {
		if e, ok := ibanAt(b, i); ok {
			found(i, e)
			i = e - 1
		}
	}
}

// ibanAt returns the end of the IBAN starting at b[i], if one does.
func ibanAt(b []byte, i int) (int, bool) {
	if !isUpper(b[i]) || isAlnum(b[i-1]) || i+4 > len(b) ||
		!isUpper(b[i+1]) || !isDigit(b[i+2]) || !isDigit(b[i+3]) {
		return 0, false
	}
	want, ok := ibanLengths[[2]byte{b[i], b[i+1]}]
	if !ok {
		return 0, false
	}
	var chars [34]byte
	n, j := 0, i
	for j < len(b) && n < want {
		c := b[j]
		if isUpper(c) || isDigit(c) {
			chars[n] = c
			n++
			j++
			continue
		}
		// One space between groups of four.
		if c == ' ' && n%4 == 0 && j+1 < len(b) && (isUpper(b[j+1]) || isDigit(b[j+1])) {
			j++
			continue
		}
		break
	}
	if n != want || (j < len(b) && isAlnum(b[j])) || !ibanValid(chars[:n]) {
		return 0, false
	}
	return j, true
}

// ibanValid checks the mod 97-10 check digits of an IBAN of upper-case
// letters and digits.
func ibanValid(s []byte) bool {
	r := 0
	add := func(c byte) {
		if isDigit(c) {
			r = (r*10 + int(c-'0')) % 97
			return
		}
		v := int(c-'A') + 10
		r = (r*100 + v) % 97
	}
	for _, c := range s[4:] {
		add(c)
	}
	for _, c := range s[:4] {
		add(c)
	}
	return r == 1
}

// National ids -------------------------------------------------------------

const ssnLen = 11

// scanSSNs finds US social security numbers written AAA-GG-SSSS, except
// those the SSA never issues: area 000, 666 or 900-999, group 00, serial
// 0000. Undashed nine-digit numbers are too common to report.
//
// Every SSN has a dash at its fourth byte: the candidates are found from
// the dashes (bytes.IndexByte), in increasing order. (Searching runs of
// digits and dashes, as IBANs are searched, is slower where dashes are
// rare: bodies of numbers.)
func scanSSNs(b []byte, lo, hi int, found func(s, e int)) {
	next := lo
	for d := lo + 3; d < hi+3 && d < len(b); d++ {
		k := bytes.IndexByte(b[d:min(len(b), hi+3)], '-')
		if k < 0 {
			return
		}
		d += k
		i := d - 3
		if i < next || !isDigit(b[i]) || isAlnum(b[i-1]) || b[i-1] == '-' || i+ssnLen > len(b) {
			continue
		}
		s := b[i : i+ssnLen]
		if !isDigit(s[1]) || !isDigit(s[2]) || s[3] != '-' || !isDigit(s[4]) || !isDigit(s[5]) ||
			s[6] != '-' || !isDigit(s[7]) || !isDigit(s[8]) || !isDigit(s[9]) || !isDigit(s[10]) {
			continue
		}
		if e := i + ssnLen; e < len(b) && (isAlnum(b[e]) || b[e] == '-') {
			continue
		}
		area := string(s[:3])
		if area == "000" || area == "666" || s[0] == '9' || string(s[4:6]) == "00" || string(s[7:]) == "0000" {
			continue
		}
		found(i, i+ssnLen)
		next = i + ssnLen
	}
}

const ninoMaxLen = 13 // "AB 12 34 56 C"

// scanNINOs finds UK National Insurance numbers ("AB123456C", or with
// spaces "AB 12 34 56 C") with a prefix HMRC allocates.
//
// (Searching runs of capitals, digits and spaces, as IBANs are searched,
// is slower where the runs are long enough and common: the digits of a
// body of numbers.)
func scanNINOs(b []byte, lo, hi int, found func(s, e int)) {
	// Two capitals, then a digit or a space: eight starts at once. The
	// capitals of the word at i+1 are those of the words at i and i+8,
	// shifted: one word is loaded and classified per eight starts.
	next, i := lo, lo
	if i+16 <= len(b) {
		u := upperLanes(word(b, i))
		for ; i < hi && i+16 <= len(b); i += 8 {
			un := upperLanes(word(b, i+8))
			m := u & (u>>8 | un<<56)
			u = un
			if m == 0 {
				continue
			}
			w := word(b, i+2)
			m &= digitLanes(w) | spaceLanes(w)
			for ; m != 0; m &= m - 1 {
				k := i + bits.TrailingZeros64(m)>>3
				if k >= hi {
					return
				}
				if k < next {
					continue
				}
				if e, ok := ninoAt(b, k); ok {
					found(k, e)
					next = e
				}
			}
		}
	}
	for i = max(i, next); i < hi; i++ {
		if e, ok := ninoAt(b, i); ok {
			found(i, e)
			i = e - 1
		}
	}
}

// ninoAt returns the end of the National Insurance number starting at
// b[i], if one does.
func ninoAt(b []byte, i int) (int, bool) {
	if !isUpper(b[i]) || isAlnum(b[i-1]) || i+9 > len(b) || !isUpper(b[i+1]) {
		return 0, false
	}
	a, c := b[i], b[i+1]
	if bytes.IndexByte([]byte("DFIQUV"), a) >= 0 || bytes.IndexByte([]byte("DFIOQUV"), c) >= 0 {
		return 0, false
	}
	switch string(b[i : i+2]) {
	case "BG", "GB", "KN", "NK", "NT", "TN", "ZZ":
		return 0, false
	}
	j := i + 2
	spaced := j < len(b) && b[j] == ' '
	ok := true
	for g := 0; g < 3 && ok; g++ {
		if spaced {
			if j >= len(b) || b[j] != ' ' {
				ok = false
				break
			}
			j++
		}
		if j+2 > len(b) || !isDigit(b[j]) || !isDigit(b[j+1]) {
			ok = false
			break
		}
		j += 2
	}
	if !ok {
		return 0, false
	}
	if spaced {
		if j >= len(b) || b[j] != ' ' {
			return 0, false
		}
		j++
	}
	if j >= len(b) || b[j] < 'A' || b[j] > 'D' {
		return 0, false
	}
	j++
	if j < len(b) && isAlnum(b[j]) {
		return 0, false
	}
	return j, true
}

// indexAt returns the first s in [i, hi) where b[s:] starts with p, or
// -1: bytes.Index(b[i:], p) cut at hi. It searches for rare, a byte of p
// that text seldom holds ('J' of "eyJ"; bytes.Index would stop at every
// 'e'), and compares p around each.
func indexAt(b []byte, i, hi int, p []byte, rare byte) int {
	at := bytes.IndexByte(p, rare)
	for j := i + at; j < min(len(b), hi+at); {
		k := bytes.IndexByte(b[j:min(len(b), hi+at)], rare)
		if k < 0 {
			return -1
		}
		s := j + k - at
		if bytes.HasPrefix(b[s:], p) {
			return s
		}
		j += k + 1
	}
	return -1
}

// Private keys --------------------------------------------------------------

var (
	pemBegin = []byte("-----BEGIN ")
	pemEnd   = []byte("-----END ")
	pemDash  = []byte("-----")
	pemLabel = []byte("PRIVATE KEY")
)

// scanPrivateKeys finds PEM blocks whose label ends in "PRIVATE KEY"
// (PKCS#8, RSA, EC, OPENSSH, ENCRYPTED ...), through their END line. A
// block whose END line is not within maxLen is reported up to maxLen:
// the key material is in it either way.
func scanPrivateKeys(maxLen int) func(b []byte, lo, hi int, found func(s, e int)) {
	return func(b []byte, lo, hi int, found func(s, e int)) {
		for i := lo; i < hi; {
			s := indexAt(b, i, hi, pemBegin, 'B')
			if s < 0 {
				return
			}
			i = s + len(pemBegin)
			rest := b[i:min(len(b), i+64)]
			d := bytes.Index(rest, pemDash)
			if d < 0 || !bytes.HasSuffix(rest[:d], pemLabel) {
				continue
			}
			limit := min(len(b), s+maxLen)
			e := limit
			if k := bytes.Index(b[i+d:limit], pemEnd); k >= 0 {
				endLine := i + d + k + len(pemEnd)
				if k2 := bytes.Index(b[endLine:limit], pemDash); k2 >= 0 {
					e = endLine + k2 + len(pemDash)
				}
			}
			found(s, e)
			i = e
		}
	}
}

// maskPEM replaces the base64 of a PEM block with '*', keeping the BEGIN
// and END lines, line breaks and escape sequences (a key inside a JSON
// string has "\n" for its newlines, and must stay a valid string).
func maskPEM(b []byte, s, e int) {
	b = b[s:e]
	start := 0
	if d := bytes.Index(b[len(pemBegin):], pemDash); d >= 0 {
		start = len(pemBegin) + d + len(pemDash)
	}
	end := len(b)
	if k := bytes.LastIndex(b, pemEnd); k >= start {
		end = k
	}
	for i := start; i < end; i++ {
		c := b[i]
		switch {
		case c == '\\':
			// An escape: \n, \/, \u000a. Keep it whole.
			if i+1 < end && b[i+1] == 'u' {
				i += 5
			} else {
				i++
			}
		case isAlnum(c) || c == '+' || c == '/':
			b[i] = '*'
		}
	}
}

// Access tokens --------------------------------------------------------------

const jwtMaxLen = 8 << 10

var jwtPrefix = []byte("eyJ")

// scanJWTs finds compact JWS/JWT shapes: three base64url segments, the
// first two starting with "eyJ" (a JSON object), and a signature of at
// least 16 characters.
func scanJWTs(b []byte, lo, hi int, found func(s, e int)) {
	for i := lo; i < hi; {
		s := indexAt(b, i, hi, jwtPrefix, 'J')
		if s < 0 {
			return
		}
		i = s + 1
		if isB64URL(b[s-1]) {
			continue
		}
		limit := min(len(b), s+jwtMaxLen)
		j := s
		seg := func(minLen int, prefix bool) bool {
			st := j
			if prefix && !bytes.HasPrefix(b[j:limit], jwtPrefix) {
				return false
			}
			for j < limit && isB64URL(b[j]) {
				j++
			}
			return j-st >= minLen
		}
		if !seg(10, true) || j >= limit || b[j] != '.' {
			continue
		}
		j++
		if !seg(10, true) || j >= limit || b[j] != '.' {
			continue
		}
		j++
		if !seg(16, false) {
			continue
		}
		found(s, j)
		i = j
	}
}

// maskAllButDots replaces everything but the dots of a JWT with '*'.
func maskAllButDots(b []byte, s, e int) {
	b = b[s:e]
	for i, c := range b {
		if c != '.' {
			b[i] = '*'
		}
	}
}

// A keyFormat is an API key with a fixed literal prefix.
type keyFormat struct {
	prefix string
	// body: allowed characters after the prefix and how many.
	body           func(byte) bool
	minLen, maxLen int
}

func awsChar(c byte) bool { return isUpper(c) || isDigit(c) }
func slackChar(c byte) bool {
	return isAlnum(c) || c == '-'
}
func ghPATChar(c byte) bool { return isAlnum(c) || c == '_' }

var (
	awsFormats = []keyFormat{
		{"AKIA", awsChar, 16, 16}, {"ASIA", awsChar, 16, 16},
	}
	githubFormats = []keyFormat{
		{"ghp_", isAlnum, 36, 36}, {"gho_", isAlnum, 36, 36}, {"ghu_", isAlnum, 36, 36},
		{"ghs_", isAlnum, 36, 36}, {"ghr_", isAlnum, 36, 36}, {"github_pat_", ghPATChar, 82, 82},
	}
	slackFormats = []keyFormat{
		{"xoxb-", slackChar, 10, 250}, {"xoxp-", slackChar, 10, 250}, {"xoxa-", slackChar, 10, 250},
		{"xoxr-", slackChar, 10, 250}, {"xoxs-", slackChar, 10, 250}, {"xoxe-", slackChar, 10, 250},
	}
)

func formatsMaxLen(fs []keyFormat) int {
	m := 0
	for _, f := range fs {
		m = max(m, len(f.prefix)+f.maxLen)
	}
	return m
}

// scanKeys finds keys of the given formats, bounded by characters outside
// their alphabet on both sides.
//
// The formats' prefixes are searched by their first byte, one pass per
// distinct first byte ("A", "gh", "xox" share theirs), each format
// keeping where its own search would resume; matches are merged by start
// so that they are reported in order.
func scanKeys(fs []keyFormat) func(b []byte, lo, hi int, found func(s, e int)) {
	var firsts []byte
	for _, f := range fs {
		if bytes.IndexByte(firsts, f.prefix[0]) < 0 {
			firsts = append(firsts, f.prefix[0])
		}
	}
	return func(b []byte, lo, hi int, found func(s, e int)) {
		var ms [][2]int
		var nextBuf [8]int
		next := nextBuf[:0]
		for range fs {
			next = append(next, lo)
		}
		for _, c := range firsts {
			for i := lo; i < hi; {
				k := bytes.IndexByte(b[i:hi], c)
				if k < 0 {
					break
				}
				s := i + k
				i = s + 1
				for fi := range fs {
					f := &fs[fi]
					p := f.prefix
					if p[0] != c || s < next[fi] || len(b)-s < len(p) || string(b[s:s+len(p)]) != p {
						continue
					}
					next[fi] = s + 1
					if isAlnum(b[s-1]) || b[s-1] == '_' {
						continue
					}
					j := s + len(p)
					for j < len(b) && j-s-len(p) < f.maxLen && f.body(b[j]) {
						j++
					}
					n := j - s - len(p)
					if n < f.minLen || (j < len(b) && f.body(b[j])) {
						continue
					}
					ms = append(ms, [2]int{s, j})
					next[fi] = j
				}
			}
		}
		if len(ms) > 1 {
			sortMatches(ms)
		}
		for _, m := range ms {
			found(m[0], m[1])
		}
	}
}

func sortMatches(ms [][2]int) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j][0] < ms[j-1][0]; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// maskKeepPrefix returns a mask keeping the first n bytes (the key's
// recognizable prefix, "AKIA", "ghp_") and starring the rest.
func maskKeepPrefix(fs []keyFormat) func(b []byte, s, e int) {
	return func(b []byte, s, e int) {
		b = b[s:e]
		keep := 0
		for _, f := range fs {
			if bytes.HasPrefix(b, []byte(f.prefix)) {
				keep = len(f.prefix)
				break
			}
		}
		for i := keep; i < len(b); i++ {
			b[i] = '*'
		}
	}
}

// Custom patterns --------------------------------------------------------------

// scanRegexp finds matches of re, cut to maxLen. The search for each match
// starts at the previous match's end, so the pattern sees no context
// before lo: ^ and \b at lo behave as at the start of the text.
func scanRegexp(re *regexp.Regexp, maxLen int) func(b []byte, lo, hi int, found func(s, e int)) {
	return func(b []byte, lo, hi int, found func(s, e int)) {
		for i := lo; i < hi; {
			m := re.FindIndex(b[i:])
			if m == nil || i+m[0] >= hi {
				return
			}
			s, e := i+m[0], i+m[1]
			if e == s {
				// An empty match finds nothing; step over it.
				i = s + 1
				continue
			}
			e = min(e, s+maxLen)
			found(s, e)
			i = e
		}
	}
}
