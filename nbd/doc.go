// Package nbd is vdisk's front end: a Network Block Device server
// (fixed newstyle negotiation, structured replies, base:allocation block
// status, STARTTLS) whose exports are Devices.
//
// The server knows nothing about the rest of vdisk. Each transmission
// request a client sends is checked against the protocol (bounds, block
// alignment, payload size, read-only exports, negotiated flags) and then
// becomes one call on the export's Device; in vdisk the Device turns the
// call into an IRP sent to the top of the partition's or disk's device
// stack, so disk filters see NBD traffic like any other I/O. The Request
// passed along names the client (Requestor), the export and the command
// flags, which is what filters and the IRP monitor show. Device errors
// become NBD error numbers through Config.Errno (vdisk maps NT status codes
// there).
//
// Each connection has one goroutine that negotiates and then reads
// requests. It runs small requests itself, back to back, and writes their
// replies in one writev when it would otherwise block reading the socket, so
// a pipelining client costs no goroutine hand-off and few system calls. A
// large transfer, a FLUSH or FUA write, or an inline request that stalls (a
// watchdog notices) makes it hand the reading to another goroutine of the
// connection (started on demand), so that requests still run concurrently,
// up to Config.MaxRequests of them; replies go out in completion order, not
// request order, and a read's reply is written straight from the pooled
// buffer the Device filled. Whichever goroutine finds the socket idle writes
// every queued reply in one writev. Memory per connection is bounded by
// Config.MaxRequests and Config.MaxBytesInFlight: the reader stops reading
// while the limits are reached.
//
// Protocol decisions, where the NBD specification leaves a choice: only
// fixed newstyle clients are served (others are disconnected after the
// greeting); block size constraints are always sent with NBD_OPT_INFO and
// NBD_OPT_GO; a client that asked for them in NBD_OPT_GO gets EINVAL for a
// request not aligned to the export's MinBlock, while one that did not
// (NBD_OPT_EXPORT_NAME included) is served at 1-byte granularity by
// read-modify-write, and a TRIM from anyone is rounded inward to whole
// blocks (unaligned.go); a READ larger than MaxBlock gets
// EINVAL, and an oversized WRITE has its payload read and discarded (in
// constant memory) before its EINVAL, so the stream stays in step; a
// structured READ is answered with one data chunk (so NBD_CMD_FLAG_DF is
// always honoured), and a Device returning an OffsetError produces the data
// before the failure plus NBD_REPLY_TYPE_ERROR_OFFSET; read-only exports
// advertise flush and cache but no write-class flags; during Shutdown,
// connections still negotiating are closed rather than answered with
// NBD_REP_ERR_SHUTDOWN.
//
// Locking: Server.mu guards the export table, listeners and connection
// set; each connection has mu (drain state and in-flight accounting) and
// qmu (reply queue). The order is Server.mu, then conn.mu, then conn.qmu;
// none of them is held across a Device call or socket I/O. Each export's
// rmw serializes read-modify-write cycles: it is held across the Device
// calls of one cycle, and no other lock is taken while it is held.
package nbd
