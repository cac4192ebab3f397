package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// Store is the byte-addressed medium beneath one disk device object: an image
// file, memory, or any go-nbd backend. Its size is fixed when it is opened;
// the disk driver bounds every request by it, and a Store refuses, rather than
// clips or grows, any transfer that does not lie wholly inside [0, Size()).
//
// A Store is safe for concurrent use. As on a real disk, writes that overlap
// and run concurrently leave an unspecified mix of their data; nothing is
// atomic beyond what the implementation documents.
type Store interface {
	// ReadAt and WriteAt transfer all of p or fail: a request reaching past
	// Size() fails with ErrOutOfRange and transfers nothing.
	io.ReaderAt
	io.WriterAt

	// Size is the store's length in bytes; it never changes.
	Size() int64

	// ReadOnly reports whether writes are refused with ErrReadOnly, so the
	// driver can answer IOCTL_DISK_IS_WRITABLE and NBD can advertise
	// NBD_FLAG_READ_ONLY before anyone tries.
	ReadOnly() bool

	// Sync makes completed writes durable (fsync for files). It is what a
	// FLUSH IRP or NBD_CMD_FLUSH ends in.
	Sync() error

	// Close releases the store. Later calls fail with an error that
	// errors.Is reports as fs.ErrClosed.
	Close() error
}

// Lender is a Store that can lend the bytes of a range instead of copying
// them out: the disk driver's answer to an MDL read (IRP_MJ_READ with
// IRP_MN_MDL), which lets the NBD server send an image's page cache to the
// socket without first copying it into a buffer of its own.
//
// Lend returns memory holding [off, off+n) that stays valid, and is not to
// be written, until Return gives it back with the same offset; it fails
// with ErrCannotLend where it cannot lend (the caller then reads normally). The bytes are the store's at the
// time of the Lend or later: a write to the range meanwhile may show.
type Lender interface {
	// Lend lends [off, off+n).
	Lend(off int64, n int) ([]byte, error)
	// Return takes back what Lend lent for off.
	Return(b []byte, off int64) error
}

// ErrCannotLend is Lend's answer where lending is not possible (a store
// that does not map, a platform without mmap, a failed mapping).
var ErrCannotLend = errors.New("disk: the store cannot lend this range")

// Trimmer is a Store that can discard a range it no longer needs to keep,
// freeing space (a TRIM IRP, NBD_CMD_TRIM). Trim is a hint: afterwards the
// range's contents are unspecified, so callers that need zeros use Zeroer or
// ZeroRange instead. The implementations here leave it reading as zeros when
// they could free space and unchanged when they could not.
type Trimmer interface {
	Trim(off, length int64) error
}

// ZeroFlags adjusts how a Zeroer zeroes a range. The flags are NBD's
// WRITE_ZEROES flags, so the NBD server passes them through unchanged in meaning.
type ZeroFlags uint8

const (
	// ZeroNoHole asks that the range stay allocated, so that later writes
	// to it cannot fail for lack of space (NBD_CMD_FLAG_NO_HOLE).
	ZeroNoHole ZeroFlags = 1 << iota

	// ZeroFast asks the store to zero only if it can do so faster than
	// writing zeros, and otherwise fail with ErrSlowZero having changed
	// nothing (NBD_CMD_FLAG_FAST_ZERO). A client uses it to decide whether to
	// pre-zero a whole disk or to write the zeros itself as it copies.
	ZeroFast
)

// Zeroer is a Store that can make a range read as zeros more cheaply than
// writing zeros, typically by deallocating it (an NBD_CMD_WRITE_ZEROES).
type Zeroer interface {
	WriteZeroes(off, length int64, flags ZeroFlags) error
}

// Extent is a run of bytes that share an allocation state; it is what
// NBD's base:allocation metadata context describes.
type Extent struct {
	Offset int64
	Length int64

	// Hole is set when the range occupies no storage (NBD_STATE_HOLE). A
	// hole always reads as zeros, so Zero is set with it.
	Hole bool

	// Zero is set when the range is known to read as zeros
	// (NBD_STATE_ZERO). Allocated data is reported with Zero unset even if
	// it happens to hold zeros: finding out would mean reading it.
	Zero bool
}

// End is the offset just past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// AllocationMapper is a Store that knows which of its ranges hold data,
// so copies and NBD_CMD_BLOCK_STATUS can skip holes without reading them.
//
// Allocation returns extents in ascending order that together cover exactly
// [off, off+length), adjacent extents differing in Hole or Zero. The answer is
// a snapshot: writes running at the same time may or may not be reflected.
type AllocationMapper interface {
	Allocation(off, length int64) ([]Extent, error)
}

var (
	// ErrReadOnly is returned by every operation that would change a
	// read-only store.
	ErrReadOnly = errors.New("disk: store is read-only")

	// ErrOutOfRange is returned for a request that does not lie wholly
	// inside the store: a negative offset or length, or one reaching past
	// Size(). Nothing is transferred.
	ErrOutOfRange = errors.New("disk: request beyond the end of the store")

	// ErrSlowZero is returned for a ZeroFast request that the store could only
	// satisfy by writing zeros. It matches errors.ErrUnsupported, which is
	// how NBD expects the failure to be reported (NBD_ENOTSUP).
	ErrSlowZero = fmt.Errorf("disk: store cannot zero the range quickly: %w", errors.ErrUnsupported)
)

// ZeroRange makes [off, off+length) of s read as zeros, the way
// NBD_CMD_WRITE_ZEROES asks: through s's Zeroer when it has one, otherwise by
// writing zeros (which ZeroFast refuses with ErrSlowZero). Like fs.ReadFile it
// lets callers use any Store without checking its capabilities first.
func ZeroRange(s Store, off, length int64, flags ZeroFlags) error {
	if z, ok := s.(Zeroer); ok {
		return z.WriteZeroes(off, length, flags)
	}
	if err := checkRange64("zero", off, length, s.Size()); err != nil {
		return err
	}
	if s.ReadOnly() {
		return ErrReadOnly
	}
	if length == 0 {
		return nil
	}
	if flags&ZeroFast != 0 {
		return ErrSlowZero
	}
	return writeZeros(s, off, length)
}

// TrimRange discards [off, off+length) of s through its Trimmer, and does
// nothing (successfully) for a store that cannot discard, since a trim is
// only a hint.
func TrimRange(s Store, off, length int64) error {
	if t, ok := s.(Trimmer); ok {
		return t.Trim(off, length)
	}
	if err := checkRange64("trim", off, length, s.Size()); err != nil {
		return err
	}
	if s.ReadOnly() {
		return ErrReadOnly
	}
	return nil
}

// MapAllocation describes [off, off+length) of s through its
// AllocationMapper; a store that cannot tell is reported as all data, which
// is always a safe answer.
func MapAllocation(s Store, off, length int64) ([]Extent, error) {
	if m, ok := s.(AllocationMapper); ok {
		return m.Allocation(off, length)
	}
	if err := checkRange64("map", off, length, s.Size()); err != nil {
		return nil, err
	}
	if length == 0 {
		return nil, nil
	}
	return []Extent{{Offset: off, Length: length}}, nil
}

// checkRange validates an n-byte transfer at off against a store of size.
func checkRange(op string, off int64, n int, size int64) error {
	return checkRange64(op, off, int64(n), size)
}

func checkRange64(op string, off, length, size int64) error {
	// size-off cannot overflow once 0 <= off <= size.
	if off < 0 || length < 0 || off > size || length > size-off {
		return fmt.Errorf("%w: %s of %d bytes at offset %d, store size %d", ErrOutOfRange, op, length, off, size)
	}
	return nil
}

// zeroChunk bounds how much a zero-writing fallback writes per call, so
// zeroing a large range neither allocates a matching buffer nor holds up
// other requests for long.
const zeroChunk = 256 << 10

// zeroBuf is shared and never written, so every fallback can use it at once.
var zeroBuf = sync.OnceValue(func() []byte { return make([]byte, zeroChunk) })

// writeZeros is the slow path of zeroing: plain writes of a shared zero buffer.
func writeZeros(w io.WriterAt, off, length int64) error {
	buf := zeroBuf()
	for length > 0 {
		n := min(length, int64(len(buf)))
		if _, err := w.WriteAt(buf[:n], off); err != nil {
			return err
		}
		off += n
		length -= n
	}
	return nil
}

// errClosed is what a closed store answers, matching os.File's error.
var errClosed = fmt.Errorf("disk: store: %w", fs.ErrClosed)
