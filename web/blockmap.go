package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/filter/monitor"
	"github.com/vdisk-dev/vdisk/iomgr"
	"github.com/vdisk-dev/vdisk/partition"
)

// The block map: each export's extent as a grid of at most maxCells cells
// of a power-of-two size. Trace records of reads, writes, trims and zeroes
// that reached a disk, partition or volume (the disk trace filter's, and
// the monitor's DIRECT I/O) are placed on the disk they lie on, and so on
// every export over that part of the disk: a write through disk@1 shows on
// disk@1 and on the whole disk's export.

// maxCells bounds the cells of one export's map.
const maxCells = 4096

// The kinds of activity, in the order of a blocks event's lists.
const (
	kindRead = iota
	kindWrite
	kindTrim
	kindZero
	kindCount
)

// activityKind returns what a record did to its blocks, or -1 for
// anything else (a fast I/O or file read is not at a disk position; an
// MDL read's release moves nothing).
func activityKind(rec *monitor.Record) int {
	if rec.Length <= 0 || rec.Path != monitor.DirectIO || rec.Status != iomgr.StatusSuccess.Name() {
		return -1
	}
	op := rec.Operation
	switch {
	case strings.HasPrefix(op, "IRP_MJ_READ"):
		if strings.Contains(op, "COMPLETE") {
			return -1
		}
		return kindRead
	case strings.HasPrefix(op, "IRP_MJ_WRITE"):
		return kindWrite
	case strings.HasSuffix(op, "/TRIM"):
		return kindTrim
	case strings.HasSuffix(op, "/ZERO"):
		return kindZero
	}
	return -1
}

// PartitionMark is a partition boundary on a whole-disk export's map.
type PartitionMark struct {
	Number int    `json:"number"`
	Export string `json:"export"`
	Start  int64  `json:"start"` // from the export's start
	Size   int64  `json:"size"`
}

// MapInfo describes one export's block map (the hello event's exports).
type MapInfo struct {
	Export     string          `json:"export"`
	Size       int64           `json:"size"`
	CellSize   int64           `json:"cell_size"`
	Cells      int             `json:"cells"`
	Partitions []PartitionMark `json:"partitions"`
}

// exportMap is an export placed on its disk.
type exportMap struct {
	MapInfo
	disk   *iomgr.Device
	start  int64 // on the disk
	device *export.Device
}

// position is where a device's offset 0 lies on its disk.
type position struct {
	disk *iomgr.Device
	base int64
}

// geometry knows where every disk, partition and volume lies and which
// exports cover it.
type geometry struct {
	maps     []*exportMap
	byDevice map[string]position
}

// cellSize is the power of two (at least 4 KiB) that divides size into at
// most maxCells cells.
func cellSize(size int64) int64 {
	cs := int64(4096)
	for size > cs*maxCells {
		cs <<= 1
	}
	return cs
}

// newGeometry places the exports of the server on their disks.
func (s *Server) newGeometry() *geometry {
	g := &geometry{byDevice: map[string]position{}}
	// Where the partitions lie, by the volume devices above them too.
	type partAt struct {
		number int
		start  int64
		size   int64
	}
	volumeAt := map[*iomgr.Device]partAt{}
	for _, img := range s.sys.Images() {
		g.byDevice[img.Disk.String()] = position{img.Disk, 0}
		for i, p := range img.Partitions {
			pe, ok := p.Extension.(*partition.Extension)
			if !ok {
				continue
			}
			at := partAt{i + 1, pe.Partition.Start, pe.Partition.Size}
			g.byDevice[p.String()] = position{img.Disk, at.start}
			if i < len(img.Volumes) {
				g.byDevice[img.Volumes[i].String()] = position{img.Disk, at.start}
				volumeAt[img.Volumes[i]] = at
			}
		}
		if len(img.Partitions) == 0 {
			for _, v := range img.Volumes {
				g.byDevice[v.String()] = position{img.Disk, 0}
			}
		}
	}
	seen := map[*export.Device]bool{}
	for _, e := range s.exports {
		ed, ok := e.Device.(*export.Device)
		if !ok || seen[ed] || e.Name == "" {
			continue // the default export is the first disk's again
		}
		seen[ed] = true
		pos, ok := g.byDevice[ed.Device.String()]
		if !ok {
			continue
		}
		m := &exportMap{disk: pos.disk, start: pos.base, device: ed,
			MapInfo: MapInfo{Export: e.Name, Size: ed.Length, CellSize: cellSize(ed.Length), Partitions: []PartitionMark{}}}
		m.Cells = int((m.Size + m.CellSize - 1) / m.CellSize)
		if ed.Device == pos.disk {
			for _, img := range s.sys.Images() {
				if img.Disk != ed.Device {
					continue
				}
				for _, v := range img.Volumes {
					if at, ok := volumeAt[v]; ok {
						m.Partitions = append(m.Partitions, PartitionMark{Number: at.number, Export: fmt.Sprintf("%s@%d", img.Name, at.number), Start: at.start, Size: at.size})
					}
				}
			}
		}
		g.maps = append(g.maps, m)
	}
	return g
}

// infos describes the maps.
func (g *geometry) infos() []MapInfo {
	out := []MapInfo{}
	for _, m := range g.maps {
		out = append(out, m.MapInfo)
	}
	return out
}

// activity collects the cells each kind touched since it was last taken:
// one bit set per export and kind.
type activity struct {
	g       *geometry
	touched [][kindCount][]uint64
	any     bool
}

func newActivity(g *geometry) *activity {
	a := &activity{g: g, touched: make([][kindCount][]uint64, len(g.maps))}
	for i, m := range g.maps {
		for k := range kindCount {
			a.touched[i][k] = make([]uint64, (m.Cells+63)/64)
		}
	}
	return a
}

// add marks the cells a record touched.
func (a *activity) add(rec *monitor.Record) {
	k := activityKind(rec)
	if k < 0 {
		return
	}
	pos, ok := a.g.byDevice[rec.Device]
	if !ok {
		return
	}
	lo := pos.base + rec.Offset
	hi := lo + rec.Length
	for i, m := range a.g.maps {
		if m.disk != pos.disk {
			continue
		}
		from, to := max(lo, m.start), min(hi, m.start+m.Size)
		if from >= to {
			continue
		}
		set := a.touched[i][k]
		for c := (from - m.start) / m.CellSize; c <= (to-1-m.start)/m.CellSize; c++ {
			set[c/64] |= 1 << (c % 64)
		}
		a.any = true
	}
}

// take returns the cells touched since the last take, per export name and
// kind, as runs [first cell, count, first cell, count, ...], and clears
// them; nil when nothing was touched.
func (a *activity) take() map[string][kindCount][]int {
	if !a.any {
		return nil
	}
	a.any = false
	out := map[string][kindCount][]int{}
	for i, m := range a.g.maps {
		var runs [kindCount][]int
		touched := false
		for k := range kindCount {
			runs[k] = cellRuns(a.touched[i][k], m.Cells)
			clear(a.touched[i][k])
			touched = touched || len(runs[k]) > 0
		}
		if touched {
			out[m.Export] = runs
		}
	}
	return out
}

// cellRuns lists the runs of set bits of set's first n bits as [first,
// count, ...], skipping empty words.
func cellRuns(set []uint64, n int) []int {
	out := []int{}
	start := -1
	for c := 0; c < n; c++ {
		if c%64 == 0 && set[c/64] == 0 {
			if start >= 0 {
				out = append(out, start, c-start)
				start = -1
			}
			c += 63
			continue
		}
		on := set[c/64]&(1<<(c%64)) != 0
		switch {
		case on && start < 0:
			start = c
		case !on && start >= 0:
			out = append(out, start, c-start)
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, start, n-start)
	}
	return out
}

// The states of a cell in an allocation answer, one character each.
const (
	cellHole  = 'h' // no storage: reads as zeroes
	cellData  = 'd' // allocated
	cellZero  = 'z' // allocated, known to read as zeroes
	cellMixed = 'm' // part hole, part allocated
)

// Allocation is the answer of GET /web/allocation: one character per cell.
type Allocation struct {
	Export   string `json:"export"`
	CellSize int64  `json:"cell_size"`
	Cells    string `json:"cells"`
}

// allocation asks the export's stack what is allocated (as an NBD client's
// BLOCK_STATUS does) and sums it up per cell.
func (m *exportMap) allocation() (Allocation, error) {
	holes := make([]bool, m.Cells)
	alloc := make([]bool, m.Cells)
	zero := make([]bool, m.Cells)
	const maxQueries = 4096 // each answers many extents; a pathological store ends as "data"
	off := int64(0)
	for q := 0; off < m.Size && q < maxQueries; q++ {
		ext, err := m.device.Allocation(Requestor, off, m.Size-off)
		if err != nil {
			return Allocation{}, fmt.Errorf("allocation of %s at %d: %w", m.Export, off, err)
		}
		if len(ext) == 0 {
			break
		}
		for _, x := range ext {
			if x.Length <= 0 {
				continue
			}
			end := min(off+x.Length, m.Size)
			for c := off / m.CellSize; c <= (end-1)/m.CellSize; c++ {
				switch {
				case x.Hole:
					holes[c] = true
				case x.Zero:
					zero[c] = true
				default:
					alloc[c] = true
				}
			}
			off = end
		}
	}
	var b strings.Builder
	for c := range m.Cells {
		start := int64(c) * m.CellSize
		switch {
		case start >= off: // not answered: say allocated, the safe answer
			b.WriteByte(cellData)
		case holes[c] && (alloc[c] || zero[c]):
			b.WriteByte(cellMixed)
		case holes[c]:
			b.WriteByte(cellHole)
		case alloc[c]:
			b.WriteByte(cellData)
		default:
			b.WriteByte(cellZero)
		}
	}
	return Allocation{Export: m.Export, CellSize: m.CellSize, Cells: b.String()}, nil
}

func (s *Server) serveAllocation(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("export")
	for _, m := range s.newGeometry().maps {
		if m.Export == name {
			a, err := m.allocation()
			if err != nil {
				writeError(w, http.StatusInternalServerError, err)
				return
			}
			writeJSONValue(w, a)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("allocation: no export named %q", name))
}
