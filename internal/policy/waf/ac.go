package waf

import (
	"cmp"
	"slices"
)

// acMatcher finds, in one pass over a folded value, which of many literal
// sets have a string in the value (Aho-Corasick over the union of the
// sets' strings). It answers exactly what litSet.contains answers for each
// set, for all sets at once.
//
// Read-only after newACMatcher and resident for as long as its rule set:
// nodes, edges and outputs are each one flat slice (16 bytes a node)
// rather than two slices per node, which for the CRS's tens of thousands
// of nodes was most of the gate's memory.
type acMatcher struct {
	root [256]int32 // root transitions (complete: 0 stays at the root)
	// nodes has one more entry than there are nodes, so that node n's
	// edges are edges[nodes[n].edge:nodes[n+1].edge] (sorted by byte;
	// none for the root, which uses root) and its outputs
	// outs[nodes[n].out:nodes[n+1].out].
	nodes []acNode
	edges []acEdge
	outs  []int32 // ids of the sets holding the string ending at a node
	nsets int
}

type acNode struct {
	edge, out int32
	fail      int32
	// dict is the nearest node on the fail chain (self excluded) with
	// output, or -1.
	dict int32
}

type acEdge struct {
	b  byte
	to int32
}

// acBuildNode is a trie node while building.
type acBuildNode struct {
	edges      []acEdge
	out        []int32
	fail, dict int32
}

// newACMatcher builds the matcher of sets; set i's id is i.
func newACMatcher(sets [][]string) *acMatcher {
	nodes := []acBuildNode{{dict: -1}}
	child := func(n int32, b byte) int32 {
		for _, e := range nodes[n].edges {
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
					next = int32(len(nodes))
					nodes = append(nodes, acBuildNode{dict: -1})
					nodes[n].edges = append(nodes[n].edges, acEdge{b: s[i], to: next})
				}
				n = next
			}
			if k := len(nodes[n].out); k == 0 || nodes[n].out[k-1] != int32(id) {
				nodes[n].out = append(nodes[n].out, int32(id))
			}
		}
	}
	m := &acMatcher{nsets: len(sets)}
	// Breadth-first: fail links and dictionary links.
	var queue []int32
	for _, e := range nodes[0].edges {
		m.root[e.b] = e.to
		nodes[e.to].fail = 0
		queue = append(queue, e.to)
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, e := range nodes[n].edges {
			f := nodes[n].fail
			for {
				if f == 0 {
					nodes[e.to].fail = m.root[e.b]
					break
				}
				if c := child(f, e.b); c >= 0 {
					nodes[e.to].fail = c
					break
				}
				f = nodes[f].fail
			}
			if nodes[e.to].fail == e.to {
				nodes[e.to].fail = 0
			}
			queue = append(queue, e.to)
		}
		// dict of n: its fail target if that has output, else the
		// target's dict (already set: the target is shallower).
		f := nodes[n].fail
		if len(nodes[f].out) > 0 {
			nodes[n].dict = f
		} else {
			nodes[n].dict = nodes[f].dict
		}
	}
	// Flatten. The root's edges are in root.
	nEdges, nOuts := 0, 0
	for i := 1; i < len(nodes); i++ {
		nEdges += len(nodes[i].edges)
	}
	for i := range nodes {
		nOuts += len(nodes[i].out)
	}
	m.nodes = make([]acNode, len(nodes)+1)
	m.edges = make([]acEdge, 0, nEdges)
	m.outs = make([]int32, 0, nOuts)
	for i := range nodes {
		b := &nodes[i]
		m.nodes[i] = acNode{edge: int32(len(m.edges)), out: int32(len(m.outs)), fail: b.fail, dict: b.dict}
		if i > 0 {
			start := len(m.edges)
			m.edges = append(m.edges, b.edges...)
			slices.SortFunc(m.edges[start:], func(x, y acEdge) int { return cmp.Compare(x.b, y.b) })
		}
		m.outs = append(m.outs, b.out...)
	}
	m.nodes[len(nodes)] = acNode{edge: int32(len(m.edges)), out: int32(len(m.outs))}
	return m
}

func (m *acMatcher) next(n int32, b byte) int32 {
	for n != 0 {
		// Trie edges never lead back to the root, so 0 is "no edge".
		if to := m.child(n, b); to != 0 {
			return to
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
			for _, id := range m.outs[m.nodes[o].out:m.nodes[o+1].out] {
				hits[id>>6] |= 1 << (id & 63)
			}
		}
	}
}

// scanMarked is scan for a caller that scans many values: marks (one
// entry per node, len(m.nodes)) and mark record which nodes this scan has
// already emitted. A node's outputs and those of its dictionary chain are
// the same every time it is reached, and setting a bit twice sets it
// once, so a node reached again (a repeated byte, a repeated keyword)
// emits nothing new: the walk stops at the first marked node, whose chain
// was emitted when it was marked. mark must differ from every mark of a
// previous scan still in marks.
func (m *acMatcher) scanMarked(folded []byte, hits []uint64, marks []uint32, mark uint32) {
	n := int32(0)
	for _, b := range folded {
		n = m.next(n, b)
		for o := n; o > 0 && marks[o] != mark; o = m.nodes[o].dict {
			marks[o] = mark
			for _, id := range m.outs[m.nodes[o].out:m.nodes[o+1].out] {
				hits[id>>6] |= 1 << (id & 63)
			}
		}
	}
}

// words is the length of a hits bitset.
func (m *acMatcher) words() int { return (m.nsets + 63) / 64 }
