package waf

// acMatcher finds, in one pass over a folded value, which of many literal
// sets have a string in the value (Aho-Corasick over the union of the
// sets' strings). It answers exactly what litSet.contains answers for each
// set, for all sets at once.
type acMatcher struct {
	root  [256]int32 // root transitions (complete: 0 stays at the root)
	nodes []acNode
	nsets int
}

type acNode struct {
	edges []acEdge // sorted by byte; non-root nodes only
	fail  int32
	// dict is the nearest node on the fail chain (self excluded) with
	// output, or -1.
	dict int32
	out  []int32 // ids of the sets holding the string ending here
}

type acEdge struct {
	b  byte
	to int32
}

// newACMatcher builds the matcher of sets; set i's id is i.
func newACMatcher(sets [][]string) *acMatcher {
	m := &acMatcher{nodes: []acNode{{fail: 0, dict: -1}}, nsets: len(sets)}
	child := func(n int32, b byte) int32 {
		for _, e := range m.nodes[n].edges {
			if e.b == b {
				return e.to
			}
		}
		return -1
	}
	for id, set := range sets {
		for _, s := range set {
			n := int32(0)
			for i := 0; i < len(s); i++ {
				next := child(n, s[i])
				if next < 0 {
					next = int32(len(m.nodes))
					m.nodes = append(m.nodes, acNode{dict: -1})
					m.nodes[n].edges = append(m.nodes[n].edges, acEdge{b: s[i], to: next})
				}
				n = next
			}
			if k := len(m.nodes[n].out); k == 0 || m.nodes[n].out[k-1] != int32(id) {
				m.nodes[n].out = append(m.nodes[n].out, int32(id))
			}
		}
	}
	for b := range m.root {
		m.root[b] = 0
	}
	// Breadth-first: fail links and dictionary links.
	var queue []int32
	for _, e := range m.nodes[0].edges {
		m.root[e.b] = e.to
		m.nodes[e.to].fail = 0
		queue = append(queue, e.to)
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, e := range m.nodes[n].edges {
			f := m.nodes[n].fail
			for {
				if f == 0 {
					m.nodes[e.to].fail = m.root[e.b]
					break
				}
				if c := child(f, e.b); c >= 0 {
					m.nodes[e.to].fail = c
					break
				}
				f = m.nodes[f].fail
			}
			if m.nodes[e.to].fail == e.to {
				m.nodes[e.to].fail = 0
			}
			queue = append(queue, e.to)
		}
		// dict of n: its fail target if that has output, else the
		// target's dict (already set: the target is shallower).
		f := m.nodes[n].fail
		if len(m.nodes[f].out) > 0 {
			m.nodes[n].dict = f
		} else {
			m.nodes[n].dict = m.nodes[f].dict
		}
	}
	for i := range m.nodes {
		slicesSortEdges(m.nodes[i].edges)
	}
	return m
}

func slicesSortEdges(es []acEdge) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].b < es[j-1].b; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

func (m *acMatcher) next(n int32, b byte) int32 {
	for n != 0 {
		es := m.nodes[n].edges
		lo, hi := 0, len(es)
		for lo < hi {
			mid := (lo + hi) / 2
			if es[mid].b < b {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo < len(es) && es[lo].b == b {
			return es[lo].to
		}
		n = m.nodes[n].fail
	}
	return m.root[b]
}

// scan sets in hits (len >= words()) the bits of the sets with a string in
// folded.
func (m *acMatcher) scan(folded []byte, hits []uint64) {
	n := int32(0)
	for _, b := range folded {
		n = m.next(n, b)
		for o := n; o > 0; o = m.nodes[o].dict {
			for _, id := range m.nodes[o].out {
				hits[id>>6] |= 1 << (id & 63)
			}
		}
	}
}

// words is the length of a hits bitset.
func (m *acMatcher) words() int { return (m.nsets + 63) / 64 }
