package queue

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Files beside the outbox: compaction, salvage and creation each build the
// new file completely (fsynced) before it takes the outbox's path in one
// step, a rename or a hard link (placeNew), so a crash leaves the old file
// or the new one there; what such a crash leaves beside it is settled at
// the next open (adoptLeftover, removeLeftovers).

// adoptLeftover finishes what a compaction or salvage killed half-way
// left. Both build the new file completely (fsynced) as <path>.new before
// touching <path>, so with <path> missing, <path>.new is whole and is the
// outbox. An agent before this version compacted with two renames and
// could leave <path>.old as the only copy of the backlog.
func (q *Queue) adoptLeftover() {
	path := q.o.Path
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return
	}
	for _, from := range []string{".new", ".old"} {
		if err := os.Rename(path+from, path); err == nil {
			syncDir(dirOf(path))
			q.o.Log.Warn().Str("path", path).Str("from", path+from).Msg("outbox recovered from an interrupted compaction or salvage")
			return
		}
	}
}

// removeLeftovers deletes, with the file's lock held, what an interrupted
// compaction, salvage or creation left beside an existing outbox: an
// unfinished <path>.new, <path>.init-* or (earlier versions) <path>.compact,
// and <path>.old, a stale copy once both renames of an earlier version's
// compaction were done.
func (q *Queue) removeLeftovers() {
	path := q.o.Path
	stale := []string{path + ".new", path + ".old", path + ".compact"}
	if entries, err := os.ReadDir(filepath.Dir(path)); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), filepath.Base(path)+".init-") {
				stale = append(stale, filepath.Join(filepath.Dir(path), e.Name()))
			}
		}
	}
	for _, f := range stale {
		if err := os.Remove(f); err == nil {
			q.o.Log.Warn().Str("file", f).Msg("outbox: removed the leftover of an interrupted compaction, salvage or creation")
		}
	}
}

// placeNew puts the finished file tmp at path unless path exists (another
// process was quicker): a hard link where the file system has them, else
// a rename.
func placeNew(tmp, path string) error {
	err := os.Link(tmp, path)
	if err != nil && !errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(path); serr == nil {
			return os.ErrExist
		}
		err = os.Rename(tmp, path)
	}
	if err == nil {
		os.Remove(tmp)
		syncDir(dirOf(path))
	}
	return err
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if os.IsPathSeparator(p[i]) {
			return p[:i+1]
		}
	}
	return "."
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}
