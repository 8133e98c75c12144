package apikey

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// keySet holds the configured keys in a form sized for millions of them:
// the hashes in one sorted byte array, the consumer names in one string,
// and per key two integers. None of it holds pointers per key, so the
// garbage collector marks a handful of objects however many keys there
// are, and a lookup costs no allocation.
//
// A lookup picks a bucket by the leading bits of the hash (SHA-256 outputs
// are uniform, so buckets are even) and binary-searches it.
type keySet struct {
	shift   uint     // 32 - bucket bits: bucket of h is be32(h) >> shift
	buckets []uint32 // len 2^bits + 1: first index of each bucket
	hashes  []byte   // len n*32, sorted
	nameEnd []uint32 // len n: end of key i's consumer name in names
	nameLen []uint8  // len n: its length (at most maxConsumerLen)
	prof    []uint32 // len n: index of key i's profile
	names   string   // every consumer name, end to end
	// profiles are the scopes and claims of consumers, shared by every
	// consumer with the same scopes and tier and no metadata.
	profiles []profile
}

// profile is what consumers share besides their name.
type profile struct {
	scopes []string
	claims map[string]any
}

// Len returns the number of keys.
func (s *keySet) Len() int { return len(s.nameEnd) }

// lookup returns the index of the key with hash sum, or -1.
func (s *keySet) lookup(sum *[sha256.Size]byte) int {
	if len(s.nameEnd) == 0 {
		return -1
	}
	b := be32(sum[:]) >> s.shift
	lo, hi := int(s.buckets[b]), int(s.buckets[b+1])
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(s.hashes[m*sha256.Size:(m+1)*sha256.Size], sum[:]); {
		case c == 0:
			// The search is not constant-time, but what it could leak is
			// about the hash of the presented key, which says nothing about
			// any valid key. The compare guards against a mistake in that
			// reasoning at no cost.
			if subtle.ConstantTimeCompare(s.hashes[m*sha256.Size:(m+1)*sha256.Size], sum[:]) != 1 {
				return -1
			}
			return m
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return -1
}

// principal returns a new Principal for key i.
func (s *keySet) principal(i int) *policy.Principal {
	end := s.nameEnd[i]
	name := s.names[end-uint32(s.nameLen[i]) : end]
	p := &s.profiles[s.prof[i]]
	return &policy.Principal{
		Subject:  name,
		ClientID: name,
		Consumer: name,
		Scopes:   p.scopes,
		Claims:   p.claims,
		Method:   "apikey",
	}
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// pos is a place in a config file.
type pos struct{ line, col uint32 }

// keySetBuilder collects keys, checks them and builds a keySet. It keeps
// per key only what the finished set keeps plus the places of the consumer
// and the hash (for duplicate errors), never the decoded entries.
type keySetBuilder struct {
	hashes  []byte
	names   strings.Builder
	nameEnd []uint32
	nameLen []uint8
	prof    []uint32

	// Where each key came from, for errors: its path ("keys[3]") is
	// rebuilt from its source and index.
	src       []uint8
	idx       []uint32
	consPos   []pos
	hashPos   []pos
	srcFiles  []string // file of each source
	srcPrefix []string // path of each source's list, e.g. "keys"

	profIndex map[string]uint32
	profiles  []profile

	errs     []error
	dropped  int // errors past maxErrors, counted only
	scratchB []byte
}

// maxErrors bounds the errors reported for one authenticator: a file of a
// million bad entries needs the first few to be fixed, not a million lines.
const maxErrors = 50

func newKeySetBuilder() *keySetBuilder {
	return &keySetBuilder{profIndex: make(map[string]uint32)}
}

// addSource registers a list of keys at path prefix in file, returning its
// number for add.
func (b *keySetBuilder) addSource(file, prefix string) uint8 {
	b.srcFiles = append(b.srcFiles, file)
	b.srcPrefix = append(b.srcPrefix, prefix)
	return uint8(len(b.srcFiles) - 1)
}

// mark is the state of a builder, to go back to with truncate.
type mark struct{ keys, errs, dropped, hashes int }

func (b *keySetBuilder) mark() mark {
	return mark{len(b.nameEnd), len(b.errs), b.dropped, len(b.hashes)}
}

// truncate forgets the keys and errors added since m. The names already
// written stay in the builder's string, unreferenced.
func (b *keySetBuilder) truncate(m mark) {
	b.hashes = b.hashes[:m.hashes]
	b.nameEnd = b.nameEnd[:m.keys]
	b.nameLen = b.nameLen[:m.keys]
	b.prof = b.prof[:m.keys]
	b.src = b.src[:m.keys]
	b.idx = b.idx[:m.keys]
	b.consPos = b.consPos[:m.keys]
	b.hashPos = b.hashPos[:m.keys]
	b.errs = b.errs[:m.errs]
	b.dropped = m.dropped
}

// fail records an error.
func (b *keySetBuilder) fail(err error) {
	if len(b.errs) >= maxErrors {
		b.dropped++
		return
	}
	b.errs = append(b.errs, err)
}

// entry is one checked key, ready to add.
type entry struct {
	consumer string
	sum      [sha256.Size]byte
	scopes   []string
	tier     string
	metadata map[string]any
	consPos  pos
	hashPos  pos
}

// add adds one checked key of source src at index i.
func (b *keySetBuilder) add(src uint8, i int, e *entry) {
	if b.names.Len()+len(e.consumer) > math.MaxUint32 || len(b.nameEnd) == math.MaxUint32 {
		b.fail(fmt.Errorf("apikey: more keys than one authenticator holds (4 GiB of consumer names); keep the rest in the store"))
		return
	}
	b.hashes = append(b.hashes, e.sum[:]...)
	b.names.WriteString(e.consumer)
	b.nameEnd = append(b.nameEnd, uint32(b.names.Len()))
	b.nameLen = append(b.nameLen, uint8(len(e.consumer)))
	b.prof = append(b.prof, b.profileOf(e))
	b.src = append(b.src, src)
	b.idx = append(b.idx, uint32(i))
	b.consPos = append(b.consPos, e.consPos)
	b.hashPos = append(b.hashPos, e.hashPos)
}

// profileOf returns the profile index of e's scopes, tier and metadata,
// sharing one profile among all consumers without metadata that have the
// same scopes and tier.
func (b *keySetBuilder) profileOf(e *entry) uint32 {
	claims := func() map[string]any {
		c := make(map[string]any, len(e.metadata)+1)
		for k, v := range e.metadata {
			c[k] = v
		}
		if e.tier != "" {
			c["tier"] = e.tier
		}
		return c
	}
	if len(e.metadata) > 0 {
		b.profiles = append(b.profiles, profile{scopes: slices.Clip(e.scopes), claims: claims()})
		return uint32(len(b.profiles) - 1)
	}
	// Scopes hold no NUL (they are checked), so this key is unambiguous.
	k := b.scratchB[:0]
	k = append(k, e.tier...)
	for _, s := range e.scopes {
		k = append(k, 0)
		k = append(k, s...)
	}
	b.scratchB = k
	if i, ok := b.profIndex[string(k)]; ok {
		return i
	}
	// Clipped: an append by whoever holds a principal must not write
	// into the array every consumer of the profile shares.
	b.profiles = append(b.profiles, profile{scopes: slices.Clip(slices.Clone(e.scopes)), claims: claims()})
	i := uint32(len(b.profiles) - 1)
	b.profIndex[string(k)] = i
	return i
}

// errAt returns an error at the place p of key j's field.
func (b *keySetBuilder) errAt(j int, field string, p pos, format string, args ...any) error {
	src := b.src[j]
	return &config.Error{
		File: b.srcFiles[src], Line: int(p.line), Column: int(p.col),
		Path: b.srcPrefix[src] + "[" + strconv.Itoa(int(b.idx[j])) + "]." + field,
		Msg:  fmt.Sprintf(format, args...),
	}
}

// build sorts the keys, refuses duplicate consumers and hashes, and
// returns the set, or the errors found (all of them, up to maxErrors).
func (b *keySetBuilder) build() (*keySet, []error) {
	n := len(b.nameEnd)
	names := b.names.String()
	nameOf := func(i uint32) string { return names[b.nameEnd[i]-uint32(b.nameLen[i]) : b.nameEnd[i]] }
	// Both sorts below order (64-bit key, index) pairs, comparing the
	// full names or hashes only when the keys are equal: a comparison
	// through the index into the big arrays is a cache miss each.
	type ord struct {
		k uint64
		i uint32
	}
	ords := make([]ord, n)
	// Duplicate consumers: by a hash of the name, then the name, then
	// the order of appearance, so that the later of two is the one
	// reported, as a reader expects.
	seed := maphash.MakeSeed()
	for i := range ords {
		ords[i] = ord{maphash.String(seed, nameOf(uint32(i))), uint32(i)}
	}
	slices.SortFunc(ords, func(x, y ord) int {
		if c := cmp.Compare(x.k, y.k); c != 0 {
			return c
		}
		if c := strings.Compare(nameOf(x.i), nameOf(y.i)); c != 0 {
			return c
		}
		return cmp.Compare(x.i, y.i)
	})
	dup := make([]bool, n)
	for k := 1; k < n; k++ {
		if ords[k].k == ords[k-1].k && nameOf(ords[k].i) == nameOf(ords[k-1].i) {
			dup[ords[k].i] = true
		}
	}
	hashOf := func(i uint32) []byte { return b.hashes[int(i)*sha256.Size : int(i+1)*sha256.Size] }
	for i := range ords {
		ords[i] = ord{binary.BigEndian.Uint64(hashOf(uint32(i))), uint32(i)}
	}
	slices.SortFunc(ords, func(x, y ord) int {
		if c := cmp.Compare(x.k, y.k); c != 0 {
			return c
		}
		if c := bytes.Compare(hashOf(x.i), hashOf(y.i)); c != 0 {
			return c
		}
		return cmp.Compare(x.i, y.i)
	})
	perm := make([]uint32, n)
	for k, o := range ords {
		perm[k] = o.i
	}
	// A key whose consumer is a duplicate is dropped before its hash is
	// compared, as a reader going down the file would.
	type report struct {
		j   int
		err error
	}
	var reports []report
	for j := 0; j < n; j++ {
		if dup[j] {
			reports = append(reports, report{j, b.errAt(j, "consumer", b.consPos[j], "duplicate consumer %q", nameOf(uint32(j)))})
		}
	}
	prev := -1
	for _, p := range perm {
		j := int(p)
		if dup[j] {
			continue
		}
		if prev >= 0 && bytes.Equal(hashOf(uint32(prev)), hashOf(p)) {
			reports = append(reports, report{j, b.errAt(j, "hash", b.hashPos[j], "duplicate hash: another consumer has the same key")})
			dup[j] = true
			continue
		}
		prev = j
	}
	if len(reports) > 0 || len(b.errs) > 0 {
		slices.SortStableFunc(reports, func(x, y report) int { return x.j - y.j })
		for _, r := range reports {
			b.fail(r.err)
		}
		return nil, b.errors()
	}
	s := &keySet{
		hashes:   make([]byte, 0, n*sha256.Size),
		nameEnd:  make([]uint32, n),
		nameLen:  make([]uint8, n),
		prof:     make([]uint32, n),
		profiles: slices.Clip(b.profiles),
	}
	// Names are laid out again in hash order, so that the set does not keep
	// the builder's string and its slack.
	var nb strings.Builder
	total := 0
	for _, l := range b.nameLen {
		total += int(l)
	}
	nb.Grow(total)
	for k, p := range perm {
		s.hashes = append(s.hashes, hashOf(p)...)
		nb.WriteString(nameOf(p))
		s.nameEnd[k] = uint32(nb.Len())
		s.nameLen[k] = b.nameLen[p]
		s.prof[k] = b.prof[p]
	}
	s.names = nb.String()
	// About 8 keys per bucket; at most 2^16 buckets.
	bitsN := 0
	if n > 16 {
		bitsN = min(bits.Len(uint(n))-3, 16)
	}
	s.shift = uint(32 - bitsN)
	s.buckets = make([]uint32, 1<<bitsN+1)
	k := 0
	for bk := 0; bk < 1<<bitsN; bk++ {
		s.buckets[bk] = uint32(k)
		for k < n && int(be32(s.hashes[k*sha256.Size:])>>s.shift) == bk {
			k++
		}
	}
	s.buckets[1<<bitsN] = uint32(n)
	return s, nil
}

// errors returns the recorded errors, noting how many more were left out.
func (b *keySetBuilder) errors() []error {
	errs := b.errs
	if b.dropped > 0 {
		errs = append(slices.Clip(errs), &config.Error{
			Msg: fmt.Sprintf("and %d more errors in the keys (only the first %d are shown)", b.dropped, maxErrors)})
	}
	return errs
}
