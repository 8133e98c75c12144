package dlp

// The detectors as they were before the fast scanners (commit f73a1f5 of
// detect.go), kept as the reference the differential tests compare the
// current ones with: same matches, same order, for every input and range.

import "bytes"

// refScanCards finds 13 to 19 digit numbers, optionally grouped by single
// spaces or dashes, that pass the Luhn check (and, with iin, start like a
// card network's number). A run of groups ("4111 1111 1111 1111 5500 ...")
// is searched for the longest such number starting at each group; an
// ungrouped run of more than 19 digits (an order id, a timestamp) is not a
// card number and is skipped whole.
func refScanCards(iin bool) func(b []byte, lo, hi int, found func(s, e int)) {
	return func(b []byte, lo, hi int, found func(s, e int)) {
		var groups [40][2]int // digit groups of the run: [start, end)
		for i := lo; i < hi; i++ {
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
					if n >= 13 && luhn(digits[:n]) && (!iin || knownIIN(digits[:n])) {
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
}

// refScanIBANs finds IBANs in electronic ("DE89370400440532013000") or
// print ("DE89 3704 0044 0532 0130 00") form with the country's length
// and valid ISO 7064 mod 97-10 check digits.
func refScanIBANs(b []byte, lo, hi int, found func(s, e int)) {
	for i := lo; i < hi; i++ {
		if !isUpper(b[i]) || isAlnum(b[i-1]) || i+4 > len(b) ||
			!isUpper(b[i+1]) || !isDigit(b[i+2]) || !isDigit(b[i+3]) {
			continue
		}
		want, ok := ibanLengths[[2]byte{b[i], b[i+1]}]
		if !ok {
			continue
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
		if n != want || (j < len(b) && isAlnum(b[j])) {
			continue
		}
		if ibanValid(chars[:n]) {
			found(i, j)
			i = j - 1
		}
	}
}

// refScanSSNs finds US social security numbers written AAA-GG-SSSS, except
// those the SSA never issues: area 000, 666 or 900-999, group 00, serial
// 0000. Undashed nine-digit numbers are too common to report.
func refScanSSNs(b []byte, lo, hi int, found func(s, e int)) {
	for i := lo; i < hi; i++ {
		if !isDigit(b[i]) || isAlnum(b[i-1]) || b[i-1] == '-' || i+ssnLen > len(b) {
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
		i += ssnLen - 1
	}
}

// refScanNINOs finds UK National Insurance numbers ("AB123456C", or with
// spaces "AB 12 34 56 C") with a prefix HMRC allocates.
func refScanNINOs(b []byte, lo, hi int, found func(s, e int)) {
	for i := lo; i < hi; i++ {
		if !isUpper(b[i]) || isAlnum(b[i-1]) || i+9 > len(b) || !isUpper(b[i+1]) {
			continue
		}
		a, c := b[i], b[i+1]
		if bytes.IndexByte([]byte("DFIQUV"), a) >= 0 || bytes.IndexByte([]byte("DFIOQUV"), c) >= 0 {
			continue
		}
		switch string(b[i : i+2]) {
		case "BG", "GB", "KN", "NK", "NT", "TN", "ZZ":
			continue
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
			continue
		}
		if spaced {
			if j >= len(b) || b[j] != ' ' {
				continue
			}
			j++
		}
		if j >= len(b) || b[j] < 'A' || b[j] > 'D' {
			continue
		}
		j++
		if j < len(b) && isAlnum(b[j]) {
			continue
		}
		found(i, j)
		i = j - 1
	}
}

// refScanKeys finds keys of the given formats, bounded by characters outside
// their alphabet on both sides.
func refScanKeys(fs []keyFormat) func(b []byte, lo, hi int, found func(s, e int)) {
	return func(b []byte, lo, hi int, found func(s, e int)) {
		// Each format is searched separately; the matches are merged by
		// start so that they are reported in order.
		var ms [][2]int
		for _, f := range fs {
			p := []byte(f.prefix)
			for i := lo; i < hi; {
				k := bytes.Index(b[i:], p)
				if k < 0 || i+k >= hi {
					break
				}
				s := i + k
				i = s + 1
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
				i = j
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

// refScanPrivateKeys finds PEM blocks whose label ends in "PRIVATE KEY"
// (PKCS#8, RSA, EC, OPENSSH, ENCRYPTED ...), through their END line. A
// block whose END line is not within maxLen is reported up to maxLen:
// the key material is in it either way.
func refScanPrivateKeys(maxLen int) func(b []byte, lo, hi int, found func(s, e int)) {
	return func(b []byte, lo, hi int, found func(s, e int)) {
		for i := lo; i < hi; {
			k := bytes.Index(b[i:], pemBegin)
			if k < 0 || i+k >= hi {
				return
			}
			s := i + k
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

// refScanJWTs finds compact JWS/JWT shapes: three base64url segments, the
// first two starting with "eyJ" (a JSON object), and a signature of at
// least 16 characters.
func refScanJWTs(b []byte, lo, hi int, found func(s, e int)) {
	for i := lo; i < hi; {
		k := bytes.Index(b[i:], jwtPrefix)
		if k < 0 || i+k >= hi {
			return
		}
		s := i + k
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

// luhn reports whether the digits pass the Luhn (mod 10) check.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i])
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}
