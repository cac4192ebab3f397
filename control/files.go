package control

import (
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"time"
)

// filePath is the volume path of a files request ("." for the root).
func filePath(r *http.Request) string {
	p := path.Clean("/" + r.PathValue("path"))
	if p == "/" {
		return "."
	}
	return p[1:]
}

// readFile answers a file's contents, or a directory's listing as JSON.
func (c *Server) readFile(w http.ResponseWriter, r *http.Request) {
	v, err := c.volume(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	name := filePath(r)
	info, err := v.Stat(name)
	if err != nil {
		writeError(w, fmt.Errorf("%s:/%s: %w", v.Name, name, err))
		return
	}
	if info.IsDir() {
		entries, err := v.ReadDir(name)
		if err != nil {
			writeError(w, fmt.Errorf("%s:/%s: %w", v.Name, name, err))
			return
		}
		list := []FileEntry{}
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				writeError(w, err)
				return
			}
			list = append(list, FileEntry{Name: e.Name(), Size: fi.Size(), Dir: e.IsDir(), ModTime: fi.ModTime()})
		}
		writeJSON(w, map[string]any{"entries": list})
		return
	}
	f, err := v.Open(name)
	if err != nil {
		writeError(w, fmt.Errorf("%s:/%s: %w", v.Name, name, err))
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size(), 10))
	_, _ = io.Copy(w, f) // a failure midway can only cut the body short
}

// writeFile stores the request body as a file, creating its parents.
func (c *Server) writeFile(w http.ResponseWriter, r *http.Request) {
	v, err := c.volume(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	name := filePath(r)
	if name == "." {
		writeError(w, &apiError{code: http.StatusBadRequest, err: fmt.Errorf("%s:/: name a file to write", v.Name)})
		return
	}
	n, err := func() (int64, error) {
		if err := v.MkdirAll(path.Dir(name)); err != nil {
			return 0, err
		}
		f, err := v.Create(name)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(f, r.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return n, err
	}()
	if err != nil {
		writeError(w, fmt.Errorf("%s:/%s: %w", v.Name, name, err))
		return
	}
	writeJSON(w, FileEntry{Name: path.Base(name), Size: n, ModTime: time.Now()})
}
