//go:build !windows

package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// svcUser is the account the service runs as: the packages' "scanagent"
// user when it exists (the shipped systemd unit), else root (a service
// installed with `scanagent install`).
type svcUser struct {
	name, group string
	uid         uint32
	gids        map[uint32]bool
}

func serviceUser() svcUser {
	u := svcUser{name: "root", group: "root", gids: map[uint32]bool{0: true}}
	su, err := user.Lookup("scanagent")
	if err != nil {
		return u
	}
	uid, _ := strconv.ParseUint(su.Uid, 10, 32)
	u = svcUser{name: su.Username, group: su.Username, uid: uint32(uid), gids: map[uint32]bool{}}
	if g, err := user.LookupGroupId(su.Gid); err == nil {
		u.group = g.Name
	}
	gids, _ := su.GroupIds()
	for _, g := range append(gids, su.Gid) {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			u.gids[uint32(n)] = true
		}
	}
	return u
}

func (u svcUser) root() bool { return u.uid == 0 }

// may reports whether u has every permission bit of want (r=4, w=2, x=1)
// on fi by its owner, group and other bits.
func (u svcUser) may(fi os.FileInfo, want os.FileMode) bool {
	if u.root() {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	perm := fi.Mode().Perm()
	switch {
	case ok && st.Uid == u.uid:
		return (perm>>6)&want == want
	case ok && u.gids[st.Gid]:
		return (perm>>3)&want == want
	}
	return perm&want == want
}

func (u svcUser) canWrite(fi os.FileInfo) bool     { return u.may(fi, 0o3) } // a directory: write and search
func (u svcUser) canReadWrite(fi os.FileInfo) bool { return u.may(fi, 0o6) }

// owner names fi's owner and group.
func owner(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "?"
	}
	name, group := fmt.Sprint(st.Uid), fmt.Sprint(st.Gid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return name + ":" + group
}
