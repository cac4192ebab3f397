package disk

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"
)

// This file is the part of the RBD store that needs no Ceph: the operand
// syntax, the options, the errors, and RBDStore's checks (range, read-only,
// closed) around the image handle that store_rbd.go makes with librbd when
// vdisk is built with -tags rbd,pacific. Without the tag, store_rbd_stub.go
// answers every open with ErrRBDNotCompiled.

// RBDPrefix starts an operand that names a Ceph RBD image rather than a file.
const RBDPrefix = "rbd:"

// RBDSpec names an RBD image, or one of its snapshots: `rbd:POOL/IMAGE`,
// `rbd:POOL/NAMESPACE/IMAGE`, each optionally followed by `@SNAP`, the
// spelling of the rbd command (with qemu's "rbd:" in front).
type RBDSpec struct {
	Pool      string
	Namespace string // "" for the pool's default namespace
	Image     string
	Snap      string // "" for the image itself (its head)
}

// RBDCompiled reports whether this vdisk was built with RBD support
// (-tags rbd,pacific); without it every RBD operation answers
// ErrRBDNotCompiled.
func RBDCompiled() bool { return rbdCompiled }

// IsRBD reports whether an operand names an RBD image (starts with "rbd:").
func IsRBD(operand string) bool { return strings.HasPrefix(operand, RBDPrefix) }

// ErrRBDSpec is what ParseRBD answers for an operand that is not a valid
// `rbd:POOL/IMAGE[@SNAP]`.
var ErrRBDSpec = errors.New("not a valid RBD image name (want rbd:POOL/IMAGE or rbd:POOL/IMAGE@SNAP)")

// ParseRBD parses `rbd:POOL/IMAGE[@SNAP]` or `rbd:POOL/NAMESPACE/IMAGE[@SNAP]`.
// Each name must be non-empty and hold no '/', '@' or control character
// (librbd takes them as C strings, and the rbd command splits on '/' and
// '@'). An operand that goes on to name a partition or a path inside the
// image (`…@1`, `…:/dir`) must have those split off first: a snapshot
// name of digits reads like a partition number, which the caller resolves.
func ParseRBD(operand string) (RBDSpec, error) {
	bad := func(why string) (RBDSpec, error) {
		return RBDSpec{}, fmt.Errorf("%q: %w: %s", operand, ErrRBDSpec, why)
	}
	rest, ok := strings.CutPrefix(operand, RBDPrefix)
	if !ok {
		return bad(`it does not start with "rbd:"`)
	}
	var spec RBDSpec
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		rest, spec.Snap = rest[:i], rest[i+1:]
		if spec.Snap == "" {
			return bad("the snapshot name after '@' is empty")
		}
		if strings.Contains(spec.Snap, "@") {
			return bad("it has more than one '@'")
		}
		if strings.Contains(spec.Snap, "/") {
			return bad("the snapshot name holds a '/'")
		}
	}
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 2:
		spec.Pool, spec.Image = parts[0], parts[1]
	case 3:
		spec.Pool, spec.Namespace, spec.Image = parts[0], parts[1], parts[2]
		if spec.Namespace == "" {
			return bad("the namespace name is empty")
		}
	default:
		return bad("it needs POOL/IMAGE (or POOL/NAMESPACE/IMAGE)")
	}
	switch {
	case spec.Pool == "":
		return bad("the pool name is empty")
	case spec.Image == "":
		return bad("the image name is empty")
	}
	for _, name := range []string{spec.Pool, spec.Namespace, spec.Image, spec.Snap} {
		for _, r := range name {
			if r < 0x20 || r == 0x7f {
				return bad("a name holds a control character")
			}
		}
	}
	return spec, nil
}

// String is the operand ParseRBD reads back as s.
func (s RBDSpec) String() string {
	var b strings.Builder
	b.WriteString(RBDPrefix)
	b.WriteString(s.Pool)
	b.WriteByte('/')
	if s.Namespace != "" {
		b.WriteString(s.Namespace)
		b.WriteByte('/')
	}
	b.WriteString(s.Image)
	if s.Snap != "" {
		b.WriteByte('@')
		b.WriteString(s.Snap)
	}
	return b.String()
}

// Head is the image itself, without the snapshot.
func (s RBDSpec) Head() RBDSpec { s.Snap = ""; return s }

// RBDOptions say how to reach the cluster and how to open the image.
type RBDOptions struct {
	// ConfFile is the ceph.conf to read; "" reads librados' default
	// ($CEPH_CONF, /etc/ceph/ceph.conf, ~/.ceph/config, ./ceph.conf).
	ConfFile string
	// ID is the client's name without "client." ("admin" when empty); its
	// keyring is found as the configuration says.
	ID string
	// ReadOnly opens the image's head read-only: no lock is taken, and
	// other clients may hold it. A snapshot always opens read-only.
	ReadOnly bool
	// LockWait is how long a writable open keeps asking for the image's
	// exclusive lock while a live client holds it and refuses to give it
	// up (0 asks once). A holder that cannot answer, because it was killed
	// or its machine died or was cut off, needs no LockWait: librbd keeps
	// asking it until the OSDs time out its watch on the image
	// (osd_client_watch_timeout, 30 s by default), then breaks its lock and
	// blocklists it, so the open succeeds after that long.
	LockWait time.Duration
	// ConnectTimeout bounds reaching the monitors (30 s when 0), so an
	// unreachable cluster fails the open rather than hanging it.
	ConnectTimeout time.Duration
}

var (
	// ErrRBDNotCompiled is what every RBD operation answers in a vdisk
	// built without RBD support. It matches errors.ErrUnsupported.
	ErrRBDNotCompiled = fmt.Errorf("RBD support is not compiled in (build with -tags rbd,pacific): %w", errors.ErrUnsupported)

	// ErrRBDLocked is what a writable open answers when another client
	// holds the image's exclusive lock; the error is an *RBDLockedError
	// naming the holder.
	ErrRBDLocked = errors.New("the image's exclusive lock is held by another client")

	// ErrRBDFenced is what I/O answers once this client has been
	// blocklisted, which is how Ceph fences a client whose lock another
	// client broke: it may never write the image again.
	ErrRBDFenced = errors.New("this client was blocklisted by the cluster (another client broke its lock); reopen the image")
)

// RBDLocker is one holder of an image's lock, as `rbd lock ls` lists it.
type RBDLocker struct {
	Client  string // "client.4123"
	Cookie  string // the lock's cookie ("auto 140…" for the exclusive-lock feature)
	Address string // the client's address, "127.0.0.1:0/1234567"
	// Watching is set when the holder still watches the image, that is,
	// it is alive or died less than osd_client_watch_timeout ago.
	Watching bool
}

func (l RBDLocker) String() string {
	s := l.Client + " at " + l.Address
	if !l.Watching {
		s += " (no longer watching the image)"
	}
	return s
}

// RBDLockedError is a writable open refused because others hold the lock.
type RBDLockedError struct {
	Spec    RBDSpec
	Holders []RBDLocker
}

func (e *RBDLockedError) Error() string {
	holders := make([]string, len(e.Holders))
	for i, h := range e.Holders {
		holders[i] = h.String()
	}
	who := strings.Join(holders, ", ")
	if who == "" {
		who = "a client that released it meanwhile"
	}
	return fmt.Sprintf("%s: %v: %s", e.Spec, ErrRBDLocked, who)
}

func (e *RBDLockedError) Unwrap() error { return ErrRBDLocked }

// rbdImage is an open librbd image: what store_rbd.go implements with cgo.
// Ranges reaching it are checked and non-empty; it may be called
// concurrently, but never after or during close.
type rbdImage interface {
	readAt(p []byte, off int64) error
	writeAt(p []byte, off int64) error
	// discard frees whole objects (or granules) inside the range; it may
	// leave the partial ends as they were.
	discard(off, length int64) error
	// zero makes the whole range read as zeros, partial ends included:
	// by discarding it where zeroIsFast, by writing zeros otherwise.
	zero(off, length int64) error
	zeroIsFast() bool
	flush() error
	// extents calls fn for the ranges of [off, off+length) that hold data
	// (data set) or are known to read as zeros (data unset), in any order;
	// ranges it skips are holes.
	extents(off, length int64, fn func(off, length int64, data bool)) error
	client() string
	close() error
}

// RBDStore is a Store over a Ceph RBD image, or over one of its snapshots
// (read-only). Writes complete as librbd's cache policy lets them; Sync is
// rbd_flush, after which every completed write is on the OSDs.
// Trim discards, WriteZeroes discards without leaving stale bytes (or, with
// ZeroNoHole, writes zeros), and Allocation is RBD's diff of the image
// since its creation, parent image included for a clone.
//
// A writable store holds the image's exclusive lock from the open until
// Close, so no other client writes the image meanwhile, on any machine.
type RBDStore struct {
	spec     RBDSpec
	size     int64
	readOnly bool

	mu  sync.RWMutex // read-held by each operation, write-held by Close
	img rbdImage     // nil once closed
}

var (
	_ Store            = (*RBDStore)(nil)
	_ Trimmer          = (*RBDStore)(nil)
	_ Zeroer           = (*RBDStore)(nil)
	_ AllocationMapper = (*RBDStore)(nil)
)

// OpenRBD opens an RBD image, or a snapshot of one (read-only), as a store.
// A writable open takes the image's exclusive lock (the image needs the
// exclusive-lock feature, which CreateRBD and CloneRBD give it) and fails
// with an *RBDLockedError naming the holder if a live client holds it
// beyond opts.LockWait; a holder that died is waited out until the OSDs
// time out its watch, then fenced (see RBDOptions.LockWait). A missing
// image, snapshot or pool fails with an error matching fs.ErrNotExist.
func OpenRBD(spec RBDSpec, opts RBDOptions) (*RBDStore, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	readOnly := opts.ReadOnly || spec.Snap != ""
	img, size, err := openRBDImage(spec, opts, readOnly)
	if err != nil {
		return nil, err
	}
	return &RBDStore{spec: spec, size: size, readOnly: readOnly, img: img}, nil
}

// check refuses a spec that ParseRBD would not have made.
func (s RBDSpec) check() error {
	got, err := ParseRBD(s.String())
	if err != nil {
		return err
	}
	if got != s {
		return fmt.Errorf("%q: %w: a name holds '/' or '@'", s.String(), ErrRBDSpec)
	}
	return nil
}

// Spec is the image (and snapshot) the store was opened on.
func (s *RBDStore) Spec() RBDSpec { return s.spec }

// Client is this store's client of the cluster ("client.4123"), the name
// other clients see as the lock holder.
func (s *RBDStore) Client() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.img == nil {
		return ""
	}
	return s.img.client()
}

// Size is the image's size when it was opened.
func (s *RBDStore) Size() int64 { return s.size }

// ReadOnly reports whether the store was opened read-only (a snapshot
// always is).
func (s *RBDStore) ReadOnly() bool { return s.readOnly }

// rbdChunk bounds each librbd call: librbd refuses single requests longer
// than an int can count.
const rbdChunk = 1 << 30

// do runs op on the open image, failing with fs.ErrClosed after Close.
func (s *RBDStore) do(op func(img rbdImage) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.img == nil {
		return fmt.Errorf("%s: %w", s.spec, fs.ErrClosed)
	}
	return op(s.img)
}

// chunked runs op over [off, off+length) in pieces of at most rbdChunk.
func chunked(off, length int64, op func(off, n int64) error) error {
	for length > 0 {
		n := min(length, rbdChunk)
		if err := op(off, n); err != nil {
			return err
		}
		off += n
		length -= n
	}
	return nil
}

// ReadAt reads len(p) bytes at off.
func (s *RBDStore) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRange("read", off, len(p), s.size); err != nil {
		return 0, err
	}
	err := s.do(func(img rbdImage) error {
		return chunked(off, int64(len(p)), func(o, n int64) error {
			return img.readAt(p[o-off:o-off+n], o)
		})
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteAt writes p at off.
func (s *RBDStore) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange("write", off, len(p), s.size); err != nil {
		return 0, err
	}
	if s.readOnly {
		return 0, ErrReadOnly
	}
	err := s.do(func(img rbdImage) error {
		return chunked(off, int64(len(p)), func(o, n int64) error {
			return img.writeAt(p[o-off:o-off+n], o)
		})
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Sync flushes librbd's cache to the OSDs (rbd_flush). A read-only store
// has nothing to flush.
func (s *RBDStore) Sync() error {
	return s.do(func(img rbdImage) error {
		if s.readOnly {
			return nil
		}
		return img.flush()
	})
}

// modify checks a range-changing request and runs op over it in chunks.
func (s *RBDStore) modify(what string, off, length int64, op func(img rbdImage, off, n int64) error) error {
	if err := checkRange64(what, off, length, s.size); err != nil {
		return err
	}
	return s.do(func(img rbdImage) error {
		if s.readOnly {
			return ErrReadOnly
		}
		return chunked(off, length, func(o, n int64) error { return op(img, o, n) })
	})
}

// Trim discards the range (rbd_discard): objects wholly inside are
// deleted, and librbd may leave the partial ends of the range unchanged,
// which a trim permits.
func (s *RBDStore) Trim(off, length int64) error {
	return s.modify("trim", off, length, func(img rbdImage, o, n int64) error { return img.discard(o, n) })
}

// WriteZeroes makes the range read as zeros. Without ZeroNoHole it
// discards the whole range, partial ends included, which frees space; with
// ZeroNoHole it writes zeros, so the objects stay allocated (RBD's thick
// provisioning), and ZeroFast refuses that as slow. ZeroFast also refuses
// where librbd would write the zeros anyway
// (rbd_discard_on_zeroed_write_same off).
func (s *RBDStore) WriteZeroes(off, length int64, flags ZeroFlags) error {
	return s.modify("zero", off, length, func(img rbdImage, o, n int64) error {
		if flags&ZeroNoHole == 0 && img.zeroIsFast() {
			return img.zero(o, n)
		}
		if flags&ZeroFast != 0 {
			return ErrSlowZero
		}
		if flags&ZeroNoHole == 0 {
			return img.zero(o, n)
		}
		return writeZeros(imageWriter{img}, o, n)
	})
}

// imageWriter lets writeZeros write through an open image.
type imageWriter struct{ img rbdImage }

func (w imageWriter) WriteAt(p []byte, off int64) (int, error) {
	if err := w.img.writeAt(p, off); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Allocation reports what RBD's diff since the image's creation reports:
// ranges holding data, the rest as holes. For a clone the parent's data
// counts; for a snapshot, the data as of it. An image with fast-diff (as
// CreateRBD makes them) answers per object from its object map, as
// `rbd diff --whole-object` lists; others per written range within each
// object, as `rbd diff` lists, at a round trip per object.
//
// Whatever order librbd reports ranges in, and however they overlap, a
// range it reports as data is data here: calling data a hole would let a
// copy skip it, while the reverse only costs reading zeros.
func (s *RBDStore) Allocation(off, length int64) ([]Extent, error) {
	if err := checkRange64("map", off, length, s.size); err != nil {
		return nil, err
	}
	end := off + length
	var data [][2]int64
	err := s.do(func(img rbdImage) error {
		if length == 0 {
			return nil
		}
		return img.extents(off, length, func(o, n int64, isData bool) {
			if o, e := max(o, off), min(o+n, end); isData && e > o {
				data = append(data, [2]int64{o, e})
			}
		})
	})
	if err != nil || length == 0 {
		return nil, err
	}
	slices.SortFunc(data, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	var ext []Extent
	pos := off
	for _, d := range data {
		o, e := max(d[0], pos), d[1]
		if e <= o {
			continue // inside what is already data
		}
		if o > pos {
			ext = appendExtent(ext, Extent{Offset: pos, Length: o - pos, Hole: true, Zero: true})
		}
		ext = appendExtent(ext, Extent{Offset: o, Length: e - o})
		pos = e
	}
	if pos < end {
		ext = appendExtent(ext, Extent{Offset: pos, Length: end - pos, Hole: true, Zero: true})
	}
	return ext, nil
}

// Close flushes what the image's cache holds, releases the exclusive lock
// and disconnects from the cluster; it waits for operations in flight.
func (s *RBDStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.img == nil {
		return fmt.Errorf("%s: %w", s.spec, fs.ErrClosed)
	}
	err := s.img.close()
	s.img = nil
	return err
}

// CreateRBD creates an image of size bytes with the exclusive-lock feature
// (and layering, object-map, fast-diff, deep-flatten: the Ceph defaults),
// taking no space until written. An existing image fails with an error
// matching fs.ErrExist.
func CreateRBD(spec RBDSpec, size int64, opts RBDOptions) error {
	if err := spec.check(); err != nil {
		return err
	}
	if spec.Snap != "" {
		return fmt.Errorf("create %s: a snapshot is made with SnapshotRBD, not created as an image", spec)
	}
	if size <= 0 {
		return fmt.Errorf("create %s: size %d is not positive", spec, size)
	}
	return createRBD(spec, size, opts)
}

// RemoveRBD removes an image (not a snapshot), as `rbd rm` does. An image
// that has snapshots, or that a client has open, is refused by librbd; a
// missing one fails with an error matching fs.ErrNotExist.
func RemoveRBD(spec RBDSpec, opts RBDOptions) error {
	if err := spec.check(); err != nil {
		return err
	}
	if spec.Snap != "" {
		return fmt.Errorf("remove %s: a snapshot is not removed as an image", spec)
	}
	return removeRBD(spec, opts)
}

// SnapshotRBD takes the snapshot spec names (POOL/IMAGE@SNAP) of the
// image and, with protect, protects it so it can be cloned (and not be
// removed while clones depend on it).
func SnapshotRBD(spec RBDSpec, protect bool, opts RBDOptions) error {
	if err := spec.check(); err != nil {
		return err
	}
	if spec.Snap == "" {
		return fmt.Errorf("snapshot %s: no snapshot name (want POOL/IMAGE@SNAP)", spec)
	}
	return snapshotRBD(spec, protect, opts)
}

// CloneRBD makes child a copy-on-write clone of the snapshot parent
// (POOL/IMAGE@SNAP), protecting the snapshot first if it is not yet. The
// clone reads as the snapshot until written, stores only what is written
// to it, and has the features CreateRBD gives.
func CloneRBD(parent, child RBDSpec, opts RBDOptions) error {
	if err := parent.check(); err != nil {
		return err
	}
	if err := child.check(); err != nil {
		return err
	}
	if parent.Snap == "" {
		return fmt.Errorf("clone %s: the parent must be a snapshot (POOL/IMAGE@SNAP)", parent)
	}
	if child.Snap != "" {
		return fmt.Errorf("clone to %s: the clone is an image, not a snapshot", child)
	}
	return cloneRBD(parent, child, opts)
}

// BreakRBDLock breaks the exclusive lock of the image's head and
// blocklists its holder, as `rbd lock rm` does: the holder, even if it is
// still running, can no longer write the image (its I/O fails with
// ErrRBDFenced), so a new writer is safe. It returns the holders it broke
// (none if the image was not locked). Use it only when the holder is
// known to be gone or must be stopped; a holder that died is broken
// without it once its watch times out (see RBDOptions.LockWait).
func BreakRBDLock(spec RBDSpec, opts RBDOptions) ([]RBDLocker, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	return breakRBDLock(spec.Head(), opts)
}
