package build

import (
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/vdisk-dev/vdisk/fsd/fat"
)

// A vfat image's size is checked against its content before anything is
// written: the content needs so many clusters of the volume's cluster size
// (each file its data, each directory its entries: ".", "..", and for each
// child its short entry and long-name entries, fat.DirEntries), and, on
// FAT12/16, root entries within the fixed root directory. Format, run on a
// writer that keeps nothing, says what a size gives: the cluster size and
// type mkfs.fat would choose, and the free clusters.

// discard is a WriterAt that keeps nothing: Format's layout without an image.
type discard struct{}

func (discard) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// fitResult is what a size gives the content.
type fitResult struct {
	fits        bool
	need, free  int64 // clusters
	clusterSize int64
	why         string
}

// fitsIn checks whether t fits a volume of size bytes formatted with opts.
func fitsIn(t *tree, size int64, opts fat.FormatOptions) (fitResult, error) {
	opts.Progress = nil
	res, err := fat.Format(discard{}, size, opts)
	if err != nil {
		return fitResult{why: err.Error()}, nil // too small (or too large) for the options: does not fit
	}
	g := res.Geometry
	cs := int64(g.ClusterSize)
	r := fitResult{clusterSize: cs, free: int64(res.FreeClusters)}
	clusters := func(bytes int64) int64 { return (bytes + cs - 1) / cs }
	entries := func(n *tree) int64 {
		var e int64
		for _, c := range n.children {
			e += int64(fat.DirEntries(c.name))
		}
		return e
	}
	var walkErr error
	_ = t.walk(func(rel string, n *tree) error {
		switch {
		case !n.dir:
			r.need += clusters(n.size)
		case rel == "": // the root
			e := entries(n)
			if res.Label != "" {
				e++
			}
			if g.RootEntries > 0 {
				if e > int64(g.RootEntries) {
					r.why = fmt.Sprintf("its root directory holds %d entries, more than the %d of a FAT%d root", e, g.RootEntries, g.Type)
				}
			} else if c := clusters(e * 32); c > 1 {
				r.need += c - 1 // Format allocated the first
			}
		default:
			e := 2 + entries(n)
			if e > fat.MaxDirEntries {
				walkErr = fmt.Errorf("directory %s holds %d entries; FAT allows %d", rel, e, fat.MaxDirEntries)
			}
			r.need += clusters(e * 32)
		}
		return nil
	})
	if walkErr != nil {
		return r, walkErr
	}
	r.fits = r.why == "" && r.need <= r.free
	if !r.fits && r.why == "" {
		r.why = fmt.Sprintf("its content needs %d clusters of %d bytes, and the volume has %d free", r.need, cs, r.free)
	}
	return r, nil
}

// fitUnit is what size = auto rounds to: a whole MiB, the alignment
// partition tools use.
const fitUnit = 1 << 20

// smallestFit finds the smallest whole number of MiB whose volume holds t
// with opts, by doubling until one does and bisecting below it (volumes
// of more MiB hold more but for the steps where mkfs.fat's choice of
// cluster size or FAT type changes, so the bisection finds the smallest
// or one a step above it).
func smallestFit(t *tree, opts fat.FormatOptions) (int64, error) {
	var data int64
	_ = t.walk(func(_ string, n *tree) error { data += n.size; return nil })
	lo := int64(0) // a size, in units, known not to fit (0: none tried)
	hi := max(data/fitUnit, 1)
	for {
		r, err := fitsIn(t, hi*fitUnit, opts)
		if err != nil {
			return 0, err
		}
		if r.fits {
			break
		}
		if hi*fitUnit > maxSize/2 {
			return 0, fmt.Errorf("no FAT volume holds it: %s", r.why)
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		r, err := fitsIn(t, mid*fitUnit, opts)
		if err != nil {
			return 0, err
		}
		if r.fits {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi * fitUnit, nil
}

// checkFit refuses a vfat image whose size cannot hold its content, saying
// what size would.
func (p *Plan) checkFit(img *Image, t *tree, size int64, opts fat.FormatOptions) error {
	r, err := fitsIn(t, size, opts)
	if err != nil {
		return configErrorf(img.Pos, "image %q: %v", img.File, err)
	}
	if r.fits {
		return nil
	}
	need, err := smallestFit(t, opts)
	if err != nil {
		return configErrorf(img.Size.Pos, "image %q: %v", img.File, err)
	}
	return configErrorf(img.Size.Pos, "image %q: a %s volume is too small for its content: %s; it needs %s (size = %dM, or size = auto)",
		img.File, sizeString(size), r.why, sizeString(need), need>>20)
}

// sizeString prints a size in binary units, exactly when it is a whole
// number of them.
func sizeString(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return humanize.IBytes(uint64(n))
}
