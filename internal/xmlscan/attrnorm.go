package xmlscan

import "bytes"

// NormalizeAttributeWhitespace returns data with XML 1.0's attribute-value
// normalization (§3.3.3, after the end-of-line handling of §2.11) done on
// the literal white space of attribute values: each literal tab, line feed
// or carriage return becomes a space, a CR LF pair one space. White space
// written as a character reference (&#9;, &#xA;, &#13;) is left alone, as
// the rule says: it survives normalization.
//
// encoding/xml, and so etree, skips this step, and once a value is
// decoded a literal tab and &#9; can no longer be told apart; every other
// XML processor (libxml2, Xerces, Santuario, .NET) does it. Without it the
// gateway would read other attribute values than the service behind it,
// and the exclusive canonical form of an element with a literal tab or
// line break in an attribute would differ from the one its signer
// (xmlsec1, python3-xmlsec, WSS4J) digested. Callers apply it to the bytes
// they build a tree from, never to the bytes they forward.
//
// data must be a document Scan accepts (or one the parser will refuse
// anyway): the lexer knows only markup boundaries. It returns data itself
// when nothing needs to change.
func NormalizeAttributeWhitespace(data []byte) []byte {
	if !bytes.ContainsAny(data, "\t\n\r") {
		// Machine-written messages often hold no line break at all.
		return data
	}
	var out []byte // nil until the first change
	last := 0      // data[last:] is not yet copied to out
	for pos := 0; pos < len(data); {
		j := bytes.IndexByte(data[pos:], '<')
		if j < 0 {
			break
		}
		k := pos + j
		rest := data[k:]
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			e := bytes.Index(rest[4:], []byte("-->"))
			if e < 0 {
				return finish(out, data, last)
			}
			pos = k + 4 + e + 3
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			e := bytes.Index(rest[9:], []byte("]]>"))
			if e < 0 {
				return finish(out, data, last)
			}
			pos = k + 9 + e + 3
		case bytes.HasPrefix(rest, []byte("<?")):
			e := bytes.Index(rest[2:], []byte("?>"))
			if e < 0 {
				return finish(out, data, last)
			}
			pos = k + 2 + e + 2
		case bytes.HasPrefix(rest, []byte("<!")):
			// A declaration: Scan refuses the document; leave it as it
			// is for the refusal.
			return finish(out, data, last)
		default:
			// A start or end tag: quotes delimit attribute values, and
			// the first '>' outside them ends the tag.
			i := k + 1
			for {
				j := bytes.IndexAny(data[i:], "\"'>")
				if j < 0 {
					return finish(out, data, last)
				}
				i += j
				q := data[i]
				if q == '>' {
					break
				}
				e := bytes.IndexByte(data[i+1:], q)
				if e < 0 {
					return finish(out, data, last)
				}
				start, end := i+1, i+1+e // the value, between the quotes
				if bytes.ContainsAny(data[start:end], "\t\n\r") {
					for p := start; p < end; p++ {
						c := data[p]
						if c != '\t' && c != '\n' && c != '\r' {
							continue
						}
						if out == nil {
							out = make([]byte, 0, len(data))
						}
						out = append(out, data[last:p]...)
						out = append(out, ' ')
						if c == '\r' && p+1 < end && data[p+1] == '\n' {
							p++
						}
						last = p + 1
					}
				}
				i = end + 1
			}
			pos = i + 1
		}
	}
	return finish(out, data, last)
}

func finish(out, data []byte, last int) []byte {
	if out == nil {
		return data
	}
	return append(out, data[last:]...)
}
