package queue

import (
	"bytes"
	"errors"
	"fmt"
)

// walk is one traversal of a bbolt file's tree, read by a pageReader: it
// checks every reachable page (bounds, type, key order, referenced once,
// not also free, at most maxTreeDepth deep) and that every page is either
// reachable or free, as bbolt's Tx.Check does. A damaged page is recorded
// and its subtree skipped; the walk goes on with the rest, so the same
// walk serves verification and salvage.
type walk struct {
	r *pageReader
	// kv receives each key and value of a top-level bucket; bucket each
	// top-level bucket's name and sequence. Either may be nil.
	kv     func(bucket string, k, v []byte)
	bucket func(name string, seq uint64)

	free     map[uint64]bool // nil: the freelist is unreadable
	reached  map[uint64]bool
	problems []string
	// nProblems counts every problem; cut the subtrees skipped for one.
	nProblems, cut int
}

func newWalk(r *pageReader) *walk {
	return &walk{r: r, reached: map[uint64]bool{}}
}

func (w *walk) problem(format string, args ...any) {
	w.nProblems++
	if len(w.problems) < 8 {
		w.problems = append(w.problems, fmt.Sprintf(format, args...))
	}
}

// err summarises the problems found, nil when there were none.
func (w *walk) err() error {
	if w.nProblems == 0 {
		return nil
	}
	msg := w.problems[0]
	if w.nProblems > 1 {
		msg += fmt.Sprintf(" (and %d more problems)", w.nProblems-1)
	}
	return errors.New(msg)
}

// run walks the whole file; it returns errDeadline when the reader's
// deadline passed, the problems being in w. The reader checks every
// offset, so it should not panic on any file; should it all the same, the
// panic is a problem like any other, not a crash at every start.
func (w *walk) run() (err error) {
	defer func() {
		if r := recover(); r != nil {
			w.cut++
			w.problem("reading the file panicked: %v", r)
			err = nil
		}
	}()
	return w.walkAll()
}

func (w *walk) walkAll() error {
	free, n, err := w.r.freelist()
	if errors.Is(err, errDeadline) {
		return err
	}
	if err != nil {
		w.problem("%v", err)
	} else {
		w.free = free
		w.reach(w.r.meta.freelist, n)
	}
	if err := w.tree(w.r.meta.root, nil, nil, 0, w.topLevel); err != nil {
		return err
	}
	if w.nProblems == 0 {
		for id := uint64(2); id < w.r.meta.hwm; id++ {
			if !w.reached[id] && !w.free[id] {
				w.problem("page %d: neither reachable nor free", id)
			}
		}
	}
	return nil
}

// reach marks page id and its overflow pages (the page is n bytes) as
// reachable; it reports false if one of them already was.
func (w *walk) reach(id uint64, n int) bool {
	ok := true
	for i := uint64(0); i < uint64(n/w.r.meta.pageSize); i++ {
		ok = ok && !w.reached[id+i]
		w.reached[id+i] = true
	}
	return ok
}

// tree walks the subtree at page id, whose keys must lie in [lo, hi)
// (nil: unbounded), handing each leaf element to leaf.
func (w *walk) tree(id uint64, lo, hi []byte, depth int, leaf func(elem) error) error {
	if depth > maxTreeDepth {
		w.cut++
		w.problem("page %d: the tree is more than %d levels deep", id, maxTreeDepth)
		return nil
	}
	if w.reached[id] {
		w.cut++
		w.problem("page %d: referenced twice", id)
		return nil
	}
	buf, err := w.r.page(id)
	if errors.Is(err, errDeadline) {
		return err
	}
	if err != nil {
		w.cut++
		w.problem("%v", err)
		return nil
	}
	if !w.reach(id, len(buf)) || w.free[id] {
		w.cut++
		w.problem("page %d: in use and also free or shared", id)
		return nil
	}
	branch, elems, err := elements(buf)
	if err == nil && len(elems) > 0 && (lo != nil && bytes.Compare(elems[0].key, lo) < 0 || hi != nil && bytes.Compare(elems[len(elems)-1].key, hi) >= 0) {
		err = errors.New("keys outside the range of the parent page")
	}
	if err != nil {
		w.cut++
		w.problem("page %d: %v", id, err)
		return nil
	}
	for i, e := range elems {
		if !branch {
			if err := leaf(e); err != nil {
				return err
			}
			continue
		}
		next := hi
		if i+1 < len(elems) {
			next = elems[i+1].key
		}
		if err := w.tree(e.child, e.key, next, depth+1, leaf); err != nil {
			return err
		}
	}
	return nil
}

// topLevel handles an element of the root bucket: each must be a bucket.
func (w *walk) topLevel(e elem) error {
	if !e.bucket {
		w.problem("the root holds a key that is not a bucket")
		return nil
	}
	name := string(e.key)
	return w.openBucket(e.value, 1, func(k, v []byte) {
		if w.kv != nil {
			w.kv(name, k, v)
		}
	}, func(seq uint64) {
		if w.bucket != nil {
			w.bucket(name, seq)
		}
	})
}

// openBucket walks the bucket whose header is v, handing its keys to kv
// and its sequence to seq. Nested buckets are checked, their keys dropped.
func (w *walk) openBucket(v []byte, depth int, kv func(k, v []byte), seq func(uint64)) error {
	if len(v) < 16 {
		w.problem("a bucket header of %d bytes", len(v))
		return nil
	}
	seq(ne.Uint64(v[8:]))
	leaf := func(e elem) error {
		if e.bucket {
			return w.openBucket(e.value, depth+1, func(_, _ []byte) {}, func(uint64) {})
		}
		kv(e.key, e.value)
		return nil
	}
	root := ne.Uint64(v)
	if root != 0 {
		return w.tree(root, nil, nil, depth, leaf)
	}
	inline := v[16:]
	if len(inline) < pageHeaderSize {
		w.problem("an inline bucket of %d bytes", len(inline))
		return nil
	}
	branch, elems, err := elements(inline)
	if err == nil && branch {
		err = errors.New("an inline bucket holds a branch page")
	}
	if err != nil {
		w.problem("inline bucket: %v", err)
		return nil
	}
	for _, e := range elems {
		if err := leaf(e); err != nil {
			return err
		}
	}
	return nil
}

// orphans hands fn the elements of leaf pages that no tree reaches and the
// freelist does not list: live pages cut off by a damaged parent. Without
// a readable freelist a cut-off page cannot be told from a stale copy
// (bbolt copies on write), and with no subtree cut off an unreachable page
// is a leak, likely stale, so nothing is handed over then.
func (w *walk) orphans(fn func(k, v []byte)) {
	if w.free == nil || w.cut == 0 {
		return
	}
	end := min(w.r.meta.hwm, uint64(w.r.size)/uint64(w.r.meta.pageSize))
	for id := uint64(2); id < end; id++ {
		if w.reached[id] || w.free[id] {
			continue
		}
		buf, err := w.r.page(id)
		if err != nil {
			continue
		}
		w.reach(id, len(buf))
		if branch, elems, err := elements(buf); err == nil && !branch {
			for _, e := range elems {
				if !e.bucket {
					fn(e.key, e.value)
				}
			}
		}
	}
}
