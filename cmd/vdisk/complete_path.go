package main

import (
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// completeVolumePath prints the completions of a word that names a path
// inside a volume, IMAGE[@N]:/partial, or that starts one, IMAGE@ (the
// image's partitions): the entries of the directory whose names start
// with what was typed, directories with a trailing slash so completion can
// go on. It opens the image read-only and without locking it (a served
// image completes too); anything that fails prints nothing,
// and the shell falls back to its own completion. It reports whether the
// word was one it knows.
func completeVolumePath(w io.Writer, word string) bool {
	if img, ok := strings.CutSuffix(word, "@"); ok {
		return completePartitions(w, img)
	}
	i := strings.Index(word, ":/")
	if i <= 0 {
		return false
	}
	a, err := parseAddress(word[:i]+":/", true)
	if err != nil || a.IsHost() {
		return false
	}
	typed := word[i+1:] // "/EFI/BO"
	dir, prefix := path.Split(typed)
	s := newSession("vdisk completion", false, true)
	s.forceShare = true
	// An RBD image is looked up in the cluster of $CEPH_CONF; one that
	// does not answer soon gives no completions rather than a shell
	// waiting half a minute.
	s.ceph.ConnectTimeout = 3 * time.Second
	defer s.sys.Close()
	a.Path, a.HasPath = strings.Trim(dir, "/"), true
	if a.Path == "" {
		a.Path = "."
	}
	vol, err := s.volume(a)
	if err != nil {
		return true
	}
	entries, err := vol.ReadDir(a.Path)
	if err != nil {
		return true
	}
	for _, e := range entries {
		if !strings.HasPrefix(strings.ToLower(e.Name()), strings.ToLower(prefix)) {
			continue
		}
		slash := ""
		if e.IsDir() {
			slash = "/"
		}
		fmt.Fprintf(w, "%s%s%s%s\n", word[:i+1], dir, e.Name(), slash)
	}
	return true
}

// completePartitions prints IMAGE@N:/ for each partition of the image.
func completePartitions(w io.Writer, image string) bool {
	s := newSession("vdisk completion", false, true)
	defer s.sys.Close()
	img, err := s.sys.AddImageForceShare(image)
	if err != nil {
		return false
	}
	for n := range img.Partitions {
		fmt.Fprintf(w, "%s@%d:/\n", image, n+1)
	}
	return true
}
