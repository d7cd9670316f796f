package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"time"
)

// This file reads bbolt's file format itself, with every offset checked,
// to verify a file before bbolt touches it and to salvage records from a
// damaged one. bbolt cannot do either safely: it reads pages through its
// memory map and trusts them, so a damaged page panics, a page id beyond
// the end of a truncated file faults (SIGBUS, which recover() cannot
// catch), and a branch page that points back at an ancestor recurses
// forever. Tx.Check has the same limits (it walks in its own goroutine,
// with no cycle detection, and cannot be cancelled, which would also leave
// a read transaction open past any deadline), so it is not used here.
// Reading through pread with explicit bounds, a visited set and a deadline
// has none of these failure modes.
//
// The layout (go.etcd.io/bbolt internal/common, unchanged since boltdb
// 1.0; TestPageReaderMatchesBbolt checks it against the bbolt we build
// with): every page starts with a 16-byte header {id u64, flags u16,
// count u16, overflow u32}. Pages 0 and 1 are meta pages {magic u32,
// version u32, pageSize u32, flags u32, root {pgid u64, sequence u64},
// freelist u64, pgid (high water mark) u64, txid u64, checksum u64}, the
// checksum being FNV-64a of the bytes before it. Branch elements are
// {pos u32, ksize u32, pgid u64}, leaf elements {flags u32, pos u32,
// ksize u32, vsize u32}; pos counts from the element itself. A leaf value
// flagged 1 is a bucket {root u64, sequence u64}, followed by an inline
// leaf page when root is 0. A freelist page lists page ids (u64); a count
// of 0xFFFF means the real count is the first u64. Integers are in the
// machine's byte order.

const (
	pageHeaderSize = 16
	elementSize    = 16
	flagBranch     = 0x01
	flagLeaf       = 0x02
	flagFreelist   = 0x10
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	noFreelist     = ^uint64(0)
	maxTreeDepth   = 64
)

var ne = binary.NativeEndian

// errDeadline: the walk ran out of time; what it read was sound.
var errDeadline = errors.New("verification deadline reached")

type boltMeta struct {
	pageSize      int
	root, rootSeq uint64
	freelist, hwm uint64
	txid          uint64
}

// pageReader reads pages of one bbolt file through pread.
type pageReader struct {
	f        io.ReaderAt
	size     int64
	meta     boltMeta
	deadline time.Time // zero: none
	reads    int
}

// newPageReader reads the meta pages of f (size bytes) and picks the one
// bbolt would: the valid one with the higher transaction id.
func newPageReader(f io.ReaderAt, size int64, deadline time.Time) (*pageReader, error) {
	if size == 0 {
		return nil, errors.New("the file is empty (0 bytes)")
	}
	m0, err0 := readMeta(f, size, 0)
	sizes := []int{4096, os.Getpagesize(), 8192, 16384, 32768, 65536}
	if err0 == nil {
		sizes = []int{m0.pageSize}
	}
	var best *boltMeta
	if err0 == nil {
		best = &m0
	}
	err1 := err0
	for _, ps := range sizes {
		var m1 boltMeta
		if m1, err1 = readMeta(f, size, int64(ps)); err1 == nil {
			if best == nil || m1.txid > best.txid {
				best = &m1
			}
			break
		}
	}
	if best == nil {
		return nil, fmt.Errorf("both meta pages are invalid (%v; %v)", err0, err1)
	}
	r := &pageReader{f: f, size: size, meta: *best, deadline: deadline}
	if need := int64(best.hwm) * int64(best.pageSize); size < need {
		return r, fmt.Errorf("the file is truncated: %d bytes, its %d pages need %d", size, best.hwm, need)
	}
	return r, nil
}

func readMeta(f io.ReaderAt, size, off int64) (boltMeta, error) {
	buf := make([]byte, pageHeaderSize+64)
	if off+int64(len(buf)) > size {
		return boltMeta{}, fmt.Errorf("meta page at %d: beyond the end of the file", off)
	}
	if _, err := f.ReadAt(buf, off); err != nil {
		return boltMeta{}, fmt.Errorf("meta page at %d: %w", off, err)
	}
	m := buf[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(m[:56])
	switch {
	case ne.Uint32(m[0:]) != boltMagic:
		return boltMeta{}, fmt.Errorf("meta page at %d: not a bbolt file", off)
	case ne.Uint32(m[4:]) != boltVersion:
		return boltMeta{}, fmt.Errorf("meta page at %d: version %d", off, ne.Uint32(m[4:]))
	case ne.Uint64(m[56:]) != h.Sum64():
		return boltMeta{}, fmt.Errorf("meta page at %d: checksum mismatch", off)
	}
	meta := boltMeta{pageSize: int(ne.Uint32(m[8:])), root: ne.Uint64(m[16:]), rootSeq: ne.Uint64(m[24:]),
		freelist: ne.Uint64(m[32:]), hwm: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:])}
	if ps := meta.pageSize; ps < 512 || ps > 1<<16 || ps&(ps-1) != 0 || meta.hwm < 2 || meta.hwm > uint64(1<<50/ps) {
		return boltMeta{}, fmt.Errorf("meta page at %d: page size %d, %d pages", off, ps, meta.hwm)
	}
	return meta, nil
}

// page reads page id with its overflow pages and checks its header.
func (r *pageReader) page(id uint64) ([]byte, error) {
	if r.reads++; r.reads%256 == 0 && !r.deadline.IsZero() && time.Now().After(r.deadline) {
		return nil, errDeadline
	}
	ps := int64(r.meta.pageSize)
	if id < 2 || id >= r.meta.hwm {
		return nil, fmt.Errorf("page %d: out of bounds (the file has %d pages)", id, r.meta.hwm)
	}
	hdr := make([]byte, pageHeaderSize)
	if _, err := r.f.ReadAt(hdr, int64(id)*ps); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	overflow := uint64(ne.Uint32(hdr[12:]))
	if got := ne.Uint64(hdr); got != id {
		return nil, fmt.Errorf("page %d: identifies as page %d", id, got)
	}
	if id+overflow >= r.meta.hwm || int64(id+overflow+1)*ps > r.size {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the end of the file", id, overflow)
	}
	buf := make([]byte, int64(overflow+1)*ps)
	if _, err := r.f.ReadAt(buf, int64(id)*ps); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return buf, nil
}

// elem is one element of a page: a key with its child page (branch) or
// its value (leaf).
type elem struct {
	key, value []byte
	child      uint64
	bucket     bool
}

// elements decodes the elements of a branch or leaf page held in buf and
// checks that they lie inside it and that keys ascend strictly.
func elements(buf []byte) (branch bool, out []elem, err error) {
	flags, count := ne.Uint16(buf[8:]), int(ne.Uint16(buf[10:]))
	if flags != flagBranch && flags != flagLeaf {
		return false, nil, fmt.Errorf("page type %#x is neither branch nor leaf", flags)
	}
	branch = flags == flagBranch
	if pageHeaderSize+count*elementSize > len(buf) || (branch && count == 0) {
		return branch, nil, fmt.Errorf("%d elements do not fit the page", count)
	}
	out = make([]elem, count)
	for i := range out {
		at := pageHeaderSize + i*elementSize
		e := buf[at : at+elementSize]
		var pos, ksize, vsize uint64
		if branch {
			pos, ksize, out[i].child = uint64(ne.Uint32(e)), uint64(ne.Uint32(e[4:])), ne.Uint64(e[8:])
		} else {
			out[i].bucket = ne.Uint32(e)&1 != 0
			pos, ksize, vsize = uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
		}
		start := uint64(at) + pos
		if start+ksize+vsize > uint64(len(buf)) || start < uint64(pageHeaderSize+count*elementSize) {
			return branch, nil, fmt.Errorf("element %d lies outside the page", i)
		}
		out[i].key = buf[start : start+ksize : start+ksize]
		out[i].value = buf[start+ksize : start+ksize+vsize : start+ksize+vsize]
		if i > 0 && bytes.Compare(out[i-1].key, out[i].key) >= 0 {
			return branch, nil, fmt.Errorf("keys out of order at element %d", i)
		}
	}
	return branch, out, nil
}

// freelist reads the freelist page and returns the free page ids and the
// freelist's own size in bytes.
func (r *pageReader) freelist() (map[uint64]bool, int, error) {
	if r.meta.freelist == noFreelist {
		return nil, 0, errors.New("the file has no persisted freelist")
	}
	buf, err := r.page(r.meta.freelist)
	if err != nil {
		return nil, 0, fmt.Errorf("freelist: %w", err)
	}
	if ne.Uint16(buf[8:]) != flagFreelist {
		return nil, 0, fmt.Errorf("freelist: page %d is not a freelist page", r.meta.freelist)
	}
	n, at := uint64(ne.Uint16(buf[10:])), uint64(pageHeaderSize)
	if n == 0xFFFF {
		n, at = ne.Uint64(buf[pageHeaderSize:]), at+8
	}
	if n > uint64(len(buf))/8 || at+n*8 > uint64(len(buf)) {
		return nil, 0, fmt.Errorf("freelist: %d ids do not fit its page", n)
	}
	free := make(map[uint64]bool, n)
	for i := uint64(0); i < n; i++ {
		id := ne.Uint64(buf[at+i*8:])
		if id < 2 || id >= r.meta.hwm || free[id] {
			return nil, 0, fmt.Errorf("freelist: bad or repeated page id %d", id)
		}
		free[id] = true
	}
	return free, len(buf), nil
}
