package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dustin/go-humanize"
	"github.com/vdisk-dev/vdisk/disk"
)

// zeroBlock is the granularity at which a raw copy looks for zeros: a run of
// zero blocks becomes a hole rather than a write.
const zeroBlock = 4096

// extentReader is a source whose holes are known: a host file (its file
// system's SEEK_DATA and SEEK_HOLE) or a volume's bytes (the image's
// allocation, through the volume's stack).
type extentReader interface {
	io.ReaderAt
	Allocation(off, length int64) ([]disk.Extent, error)
	Size() int64
	Close() error
}

// sparseSink is where a raw copy writes: data through w, and ranges that
// read as zeros through zero (a hole punched in an image, or nothing in a
// new host file, which reads as zeros already).
type sparseSink struct {
	w    io.WriterAt
	zero func(off, n int64) error
}

// write writes p at off, leaving its runs of zero blocks to zero.
func (s sparseSink) write(p []byte, off int64) error {
	zeros := make([]byte, zeroBlock)
	for start := 0; start < len(p); {
		isZero := func(i int) bool { return bytes.Equal(p[i:min(i+zeroBlock, len(p))], zeros[:min(zeroBlock, len(p)-i)]) }
		z := isZero(start)
		end := start
		for end < len(p) && isZero(end) == z {
			end = min(end+zeroBlock, len(p))
		}
		var err error
		if z {
			err = s.zero(off+int64(start), int64(end-start))
		} else {
			_, err = s.w.WriteAt(p[start:end], off+int64(start))
		}
		if err != nil {
			return err
		}
		start = end
	}
	return nil
}

// roundUp rounds n up to a multiple of m.
func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

// copyRaw copies where one side is a volume's bytes (IMAGE@N without
// :/path).
func (cp *copier) copyRaw(src, dst node) error {
	if src.isDir() {
		return fmt.Errorf("cp %s: is a directory; %s takes one file's bytes", src, dst)
	}
	if !dst.raw {
		if dst.vol == nil && dst.path != "-" {
			return cp.rawToHost(src, dst)
		}
		// Standard output and files on volumes have no holes.
		return cp.copyFile(src, dst)
	}
	out, err := dst.vol.OpenRaw(true)
	if err != nil {
		return fmt.Errorf("cp %s: %w", dst, err)
	}
	defer out.Close()
	ss := int64(out.SectorSize())
	sink := sparseSink{w: out, zero: out.Zero}
	tooLarge := func(size string) error {
		return fmt.Errorf("cp %s %s: %s is %s, larger than %s (%s)", src, dst, src, size, dst, humanize.IBytes(uint64(out.Size())))
	}
	var size int64
	if in, err := cp.openExtents(src); err != nil {
		return err
	} else if in != nil {
		defer in.Close()
		if size = in.Size(); size > out.Size() {
			return tooLarge(humanize.IBytes(uint64(size)))
		}
		err := cp.copyExtents(in, size, sink, ss, src, dst)
		if err != nil {
			return err
		}
	} else {
		// A stream (standard input, a file on a volume): its size shows
		// only at its end.
		in, err := cp.open(src)
		if err != nil {
			return err
		}
		defer in.close()
		if in.size > out.Size() {
			return tooLarge(humanize.IBytes(uint64(in.size)))
		}
		buf := cp.buffer()
		for {
			n, rerr := io.ReadFull(in.r, buf[:len(buf)-int(ss)])
			if n > 0 {
				if size+int64(n) > out.Size() {
					return fmt.Errorf("cp %s %s: the data is larger than %s (%s); the first %s were written", src, dst,
						dst, humanize.IBytes(uint64(out.Size())), humanize.IBytes(uint64(size)))
				}
				m := roundUp(int64(n), ss)
				clear(buf[n:m])
				if err := sink.write(buf[:m], size); err != nil {
					return fmt.Errorf("cp %s: %w", dst, err)
				}
				cp.progress(n)
				size += int64(n)
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return fmt.Errorf("cp %s: %w", src, rerr)
			}
		}
	}
	// What the file did not fill reads as zeros: no stale bytes of what
	// the volume held before.
	if tail := roundUp(size, ss); tail < out.Size() {
		if err := out.Zero(tail, out.Size()-tail); err != nil {
			return fmt.Errorf("cp %s: %w", dst, err)
		}
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("cp %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("cp %s: %w", dst, err)
	}
	return nil
}

// openExtents opens a source whose holes can be known: a volume's bytes or
// a regular host file; nil for a stream.
func (cp *copier) openExtents(src node) (extentReader, error) {
	switch {
	case src.raw:
		in, err := src.vol.OpenRaw(false)
		if err != nil {
			return nil, fmt.Errorf("cp %s: %w", src, err)
		}
		return in, nil
	case src.vol == nil && src.path != "-":
		fi, err := os.Stat(src.path)
		if err != nil {
			return nil, hostError(src.path, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, nil
		}
		in, err := disk.OpenFile(src.path, true)
		if err != nil {
			return nil, hostError(src.path, err)
		}
		return in, nil
	}
	return nil, nil
}

// copyExtents copies size bytes of in to sink: holes as zeros, data read
// in chunks, padded to whole sectors of ss bytes.
func (cp *copier) copyExtents(in extentReader, size int64, sink sparseSink, ss int64, src, dst node) error {
	exts, err := in.Allocation(0, size)
	if err != nil || len(exts) == 0 {
		// A stack that cannot tell: all of it is data.
		exts = []disk.Extent{{Offset: 0, Length: size}}
	}
	buf := cp.buffer()
	// Each read is a whole number of the volume's sectors (4096 bytes at
	// most) but for an extent's last, leaving room in buf to pad a write
	// to ss.
	step := int64(len(buf)) - roundUp(max(ss, 4096), 4096)
	for _, e := range exts {
		if e.Hole || e.Zero {
			n := e.Length
			if e.End() == size {
				n = roundUp(size, ss) - e.Offset
			}
			if err := sink.zero(e.Offset, n); err != nil {
				return fmt.Errorf("cp %s: %w", dst, err)
			}
			cp.progress(int(e.Length))
			continue
		}
		for off := e.Offset; off < e.End(); {
			n := min(step, e.End()-off)
			if _, err := in.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("cp %s: %w", src, err)
			}
			m := roundUp(n, ss)
			clear(buf[n:m])
			if err := sink.write(buf[:m], off); err != nil {
				return fmt.Errorf("cp %s: %w", dst, err)
			}
			cp.progress(int(n))
			off += n
		}
	}
	return nil
}

// rawToHost copies a volume's bytes into a new host file, sparse: the
// volume's holes and zero blocks are not written.
func (cp *copier) rawToHost(src, dst node) error {
	in, err := src.vol.OpenRaw(false)
	if err != nil {
		return fmt.Errorf("cp %s: %w", src, err)
	}
	defer in.Close()
	key := hostKey(dst.path)
	if err := cp.claim(key, src, dst); err != nil {
		return err
	}
	out, err := disk.CreateFile(dst.path, in.Size())
	if err != nil {
		delete(cp.written, key)
		return hostError(dst.path, err)
	}
	nothing := func(int64, int64) error { return nil }
	if err := cp.copyExtents(in, in.Size(), sparseSink{w: out, zero: nothing}, 1, src, dst); err != nil {
		out.Close()
		os.Remove(dst.path)
		delete(cp.written, key)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(dst.path)
		delete(cp.written, key)
		return hostError(dst.path, err)
	}
	return nil
}

// buffer is the copier's transfer buffer.
func (cp *copier) buffer() []byte {
	if cp.buf == nil {
		cp.buf = make([]byte, 1<<20)
	}
	return cp.buf
}

// progress counts n bytes on the progress bar, if there is one.
func (cp *copier) progress(n int) {
	if cp.bar != nil {
		cp.bar.add(n)
	}
}
