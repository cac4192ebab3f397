package nbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// Device is what the requests of one export go to. The server calls its
// methods from several goroutines at once (requests on one connection run
// concurrently, and several connections may use the same export), so an
// implementation must be safe for concurrent use. In vdisk each call becomes
// an IRP sent to the top of a device stack.
//
// The server checks every request before calling the Device: offsets and
// lengths are within [0, Size()), aligned to the export's minimum block
// size, no longer than its maximum payload for ReadAt and WriteAt, nonzero,
// and write-class calls never reach the Device of a read-only export. A
// Device therefore only reports genuine failures. Errors are turned into NBD
// error numbers by Config.Errno (DefaultErrno unless replaced).
//
// The *Request is valid only for the duration of the call: the server reuses
// it afterwards.
type Device interface {
	// Size is the export size in bytes. It is read when a client selects
	// the export (NBD_OPT_INFO, NBD_OPT_GO, NBD_OPT_EXPORT_NAME) and fixed
	// for that connection.
	Size() int64

	// ReadAt fills p, which is len(p) bytes at off. p is the buffer the
	// reply is sent from: fill it in place rather than returning a buffer
	// of your own, so that a read costs no copy in the server. A short read
	// is an error.
	ReadAt(r *Request, p []byte, off int64) error

	// WriteAt writes p at off. When r.FUA() is true the data must be on
	// stable storage before WriteAt returns (the client relies on it as
	// soon as it sees the reply). p belongs to the server: do not keep it
	// after returning.
	WriteAt(r *Request, p []byte, off int64) error

	// Flush makes every write that has completed (on any connection) durable.
	// The server also calls it once per export during Shutdown.
	Flush(r *Request) error

	// Trim tells the device that the range is no longer needed. It may
	// deallocate all, part or none of it; afterwards the contents of the
	// range are unspecified until written again. When r.FUA() is true,
	// whatever it changed must be on stable storage before it returns.
	Trim(r *Request, off, length int64) error

	// WriteZeroes makes the range read back as zeroes. If r.NoHole() the
	// range must stay allocated (no hole punched). If r.FastZero() and the
	// device cannot zero the range faster than writing zeroes, it must
	// fail at once, without changing the range, with an error that maps to
	// ENOTSUP, such as ErrNotFast. When r.FUA() is true the zeroes must be
	// on stable storage before it returns.
	WriteZeroes(r *Request, off, length int64) error

	// BlockStatus reports the base:allocation state of the range: it
	// appends to ext consecutive extents starting at off and returns the
	// result (the server passes a reused slice, so the call allocates
	// nothing in the common case). Extents may cover less than length (the
	// client asks again for the rest) or more (the server clips them);
	// returning none is the same as one extent with no flags, which is
	// always a correct answer.
	BlockStatus(r *Request, off, length int64, ext []Extent) ([]Extent, error)

	// Cache is a hint that the client will soon access the range. Doing
	// nothing and returning nil is a correct implementation.
	Cache(r *Request, off, length int64) error
}

// Lender is a Device that can lend the data of a large read instead of
// filling the server's buffer: memory it owns, such as a mapping of an
// image's page cache, that the reply is sent from. The server asks only for
// reads of at least LendMin bytes, where a copy costs more than the loan.
type Lender interface {
	// LendRead returns the length bytes at off and a function the server
	// calls once the reply is written (or dropped), after which data is
	// not touched again. An error that errors.Is reports as ErrNotLent
	// makes the server read the range with ReadAt instead; other errors
	// are the read's errors.
	LendRead(r *Request, off int64, length int) (data []byte, release func(), err error)
}

// LendMin is the smallest read the server asks a Lender to lend.
const LendMin = 256 << 10

// ErrNotLent is LendRead's answer when it cannot lend the range.
var ErrNotLent = errors.New("nbd: the device cannot lend this read")

// Extent is one run of a BlockStatus answer.
type Extent struct {
	// Length in bytes; extents of length zero are ignored.
	Length int64
	// Flags is a combination of StateHole and StateZero.
	Flags uint32
}

// base:allocation state flags for Extent.Flags.
const (
	// StateHole means the range is not allocated in the backing store
	// (writing to it may need space).
	StateHole uint32 = 1 << 0
	// StateZero means the range reads as zeroes.
	StateZero uint32 = 1 << 1
)

// Export describes one named export of a Server.
type Export struct {
	// Name is what clients ask for. "" is the default export, used by
	// clients that do not name one.
	Name string
	// Description is shown to humans (NBD_INFO_DESCRIPTION and the
	// NBD_OPT_LIST reply).
	Description string
	// Device serves the export's requests.
	Device Device
	// ReadOnly makes the server advertise NBD_FLAG_READ_ONLY, withhold the
	// write-class transmission flags and refuse writes, trims and zeroing
	// with EPERM before they reach the Device.
	ReadOnly bool
	// MinBlock is the minimum block size: offsets and lengths must be
	// multiples of it (the end of the export excepted). 0 means 1. It must
	// be a power of two no larger than 64 KiB. A disk device object
	// typically wants its sector size here.
	MinBlock uint32
	// PreferredBlock is the size below which I/O is inefficient. 0 means
	// max(4096, MinBlock). It must be a power of two, at least
	// max(512, MinBlock).
	PreferredBlock uint32
	// MaxBlock is the largest READ or WRITE payload accepted. 0 means
	// 32 MiB. It must be at least PreferredBlock and no more than
	// Config.MaxBytesInFlight.
	MaxBlock uint32
	// SingleConn withholds NBD_FLAG_CAN_MULTI_CONN: the flag promises that
	// every connection sees the same bytes and that a flush on one covers
	// the writes of all, which the server cannot promise for data that
	// others may change beneath it (an image opened read-only without a
	// lock keeping writers out). Clients then use one connection.
	SingleConn bool
}

// Command is an NBD transmission request type.
type Command uint16

// The commands the server implements.
const (
	CmdRead        Command = 0
	CmdWrite       Command = 1
	CmdDisc        Command = 2
	CmdFlush       Command = 3
	CmdTrim        Command = 4
	CmdCache       Command = 5
	CmdWriteZeroes Command = 6
	CmdBlockStatus Command = 7
)

var commandNames = [...]string{"READ", "WRITE", "DISC", "FLUSH", "TRIM", "CACHE", "WRITE_ZEROES", "BLOCK_STATUS"}

// String returns the protocol name without its NBD_CMD_ prefix, for traces.
func (c Command) String() string {
	if int(c) < len(commandNames) {
		return commandNames[c]
	}
	return "UNKNOWN"
}

// CommandFlags are the per-request flags a client sends.
type CommandFlags uint16

// Command flags (NBD_CMD_FLAG_*).
const (
	// FlagFUA asks that the data be durable before the reply.
	FlagFUA CommandFlags = 1 << 0
	// FlagNoHole asks WRITE_ZEROES to keep the range allocated.
	FlagNoHole CommandFlags = 1 << 1
	// FlagDF asks for a read reply in one chunk.
	FlagDF CommandFlags = 1 << 2
	// FlagReqOne asks BLOCK_STATUS for a single extent.
	FlagReqOne CommandFlags = 1 << 3
	// FlagFastZero asks WRITE_ZEROES to fail rather than be slow.
	FlagFastZero CommandFlags = 1 << 4
)

// Request carries the facts about one client request that filters and
// monitors below the Device want: who asked (Requestor), through which
// export, with which command and flags. The server owns it and reuses it
// once the Device call returns.
type Request struct {
	c      *conn
	cmd    Command
	flags  CommandFlags
	cookie uint64
	offset uint64
	length uint32

	// Server-private reply state.
	bufp    *[]byte  // pooled data buffer, nil if none
	data    []byte   // READ/WRITE payload view into *bufp
	payload []byte   // what follows hdr on the wire (data or aux)
	aux     []byte   // reused scratch for block status and error payloads
	ext     []Extent // reused extent slice for BlockStatus
	hdr     [32]byte // reply header
	hdrLen  int
	trailer []byte // sent after payload: a second chunk (in aux), or nil
	charge  int64  // bytes counted against the connection's in-flight limit
	held    bool   // reply made by the reader: queued, written before it blocks
	release func() // gives data back to a Lender once the reply is written
}

// Requestor identifies the client: its remote address for TCP ("ip:port"),
// or for a unix socket "unix:@PID#N" (the peer's process id, when the kernel
// tells it, and the server's connection number) or "unix:PATH#N". A nil
// Request (a Device called directly, outside any connection) has none.
func (r *Request) Requestor() string {
	if r == nil || r.c == nil {
		return ""
	}
	return r.c.requestor
}

// Export is the name of the export the request addresses ("" for a nil
// Request).
func (r *Request) Export() string {
	if r == nil || r.c == nil || r.c.exp == nil {
		return ""
	}
	return r.c.exp.Name
}

// Command is the request type.
func (r *Request) Command() Command { return r.cmd }

// Flags are the command flags as the client sent them.
func (r *Request) Flags() CommandFlags { return r.flags }

// Cookie is the client's opaque request identifier, useful to correlate
// trace records with a client-side log.
func (r *Request) Cookie() uint64 { return r.cookie }

// Offset is the request's offset in the export.
func (r *Request) Offset() int64 { return int64(r.offset) }

// Length is the request's length in bytes.
func (r *Request) Length() int64 { return int64(r.length) }

// FUA reports whether the client asked for force-unit-access: the effect of
// the request must be durable before it completes.
func (r *Request) FUA() bool { return r.flags&FlagFUA != 0 }

// NoHole reports whether a WRITE_ZEROES must leave the range allocated.
func (r *Request) NoHole() bool { return r.flags&FlagNoHole != 0 }

// FastZero reports whether a WRITE_ZEROES must fail with ErrNotFast (or any
// error mapping to ENOTSUP) instead of being as slow as a write.
func (r *Request) FastZero() bool { return r.flags&FlagFastZero != 0 }

// Context is cancelled when the client's connection is torn down by Close
// or by a failed socket, so a long Device operation can give up early. A
// graceful Shutdown does not cancel it.
func (r *Request) Context() context.Context { return r.c.ctx }

// Errno is an NBD error number, as sent in replies. It implements error so
// that a Device may return one directly to choose the client's error.
type Errno uint32

// The error numbers the protocol allows.
const (
	EPERM     Errno = 1
	EIO       Errno = 5
	ENOMEM    Errno = 12
	EINVAL    Errno = 22
	ENOSPC    Errno = 28
	EOVERFLOW Errno = 75
	ENOTSUP   Errno = 95
	ESHUTDOWN Errno = 108
)

// Error returns the protocol name of the error.
func (e Errno) Error() string {
	switch e {
	case EPERM:
		return "nbd: EPERM: operation not permitted"
	case EIO:
		return "nbd: EIO: input/output error"
	case ENOMEM:
		return "nbd: ENOMEM: cannot allocate memory"
	case EINVAL:
		return "nbd: EINVAL: invalid argument"
	case ENOSPC:
		return "nbd: ENOSPC: no space left on device"
	case EOVERFLOW:
		return "nbd: EOVERFLOW: value too large"
	case ENOTSUP:
		return "nbd: ENOTSUP: operation not supported"
	case ESHUTDOWN:
		return "nbd: ESHUTDOWN: server is shutting down"
	}
	return "nbd: unknown error number"
}

// OffsetError is a Device error that says where a request failed: the
// range before Offset (an absolute export offset) was transferred, the
// range from Offset on was not. With structured replies the server then
// answers with NBD_REPLY_TYPE_ERROR_OFFSET, and a READ also returns the
// data before Offset, so the client knows exactly what succeeded. Without
// structured replies, or if Offset is outside the request, it is an
// ordinary error. Err chooses the error number (through Config.Errno).
type OffsetError struct {
	Offset int64
	Err    error
}

// Error describes the failure and its offset.
func (e *OffsetError) Error() string {
	return fmt.Sprintf("at offset %d: %v", e.Offset, e.Err)
}

// Unwrap returns Err, so that errors.Is and the error hook see it.
func (e *OffsetError) Unwrap() error { return e.Err }

// ErrNotFast is what a Device returns from WriteZeroes when the client set
// FastZero and zeroing would be no faster than writing. It maps to ENOTSUP,
// which tells the client to write the zeroes itself.
var ErrNotFast = errors.New("nbd: write zeroes would not be faster than a write")

// DefaultErrno maps a Device error to an NBD error number: an Errno in the
// chain is used as is; ErrNotFast and errors.ErrUnsupported give ENOTSUP;
// syscall errnos map to their NBD namesakes (EROFS and EACCES to EPERM,
// EDQUOT and EFBIG to ENOSPC, as the spec asks); context cancellation gives
// ESHUTDOWN; anything else is EIO.
func DefaultErrno(err error) Errno {
	if err == nil {
		return 0
	}
	var e Errno
	if errors.As(err, &e) && e != 0 {
		return e
	}
	if errors.Is(err, ErrNotFast) || errors.Is(err, errors.ErrUnsupported) {
		return ENOTSUP
	}
	var se syscall.Errno
	if errors.As(err, &se) {
		switch se {
		case syscall.EPERM, syscall.EACCES, syscall.EROFS:
			return EPERM
		case syscall.ENOMEM:
			return ENOMEM
		case syscall.EINVAL:
			return EINVAL
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG:
			return ENOSPC
		case syscall.EOVERFLOW:
			return EOVERFLOW
		case syscall.ENOTSUP:
			return ENOTSUP
		case syscall.ESHUTDOWN:
			return ESHUTDOWN
		}
		return EIO
	}
	if errors.Is(err, context.Canceled) {
		return ESHUTDOWN
	}
	return EIO
}
