package nbd

// Wire constants of the NBD protocol (doc/proto.md of the NetworkBlockDevice
// project). They are unexported: callers talk to the server through Device,
// Export and Config, never through raw protocol numbers, except for the
// values a Device or an error hook can legitimately produce (Errno, the
// base:allocation state flags, the command flags on Request).

const (
	magicInit      = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt       = 0x49484156454F5054 // "IHAVEOPT"
	magicOldstyle  = 0x00420281861253   // cliserv_magic (never sent: oldstyle is refused)
	magicOptReply  = 0x0003e889045565a9
	magicRequest   = 0x25609513
	magicSimple    = 0x67446698
	magicStructure = 0x668e33ef
)

// Handshake flags (server) and client flags.
const (
	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	clientFixedNewstyle = 1 << 0
	clientNoZeroes      = 1 << 1
	clientKnownFlags    = clientFixedNewstyle | clientNoZeroes
)

// Transmission flags.
const (
	tflagHasFlags        = 1 << 0
	tflagReadOnly        = 1 << 1
	tflagSendFlush       = 1 << 2
	tflagSendFUA         = 1 << 3
	tflagRotational      = 1 << 4
	tflagSendTrim        = 1 << 5
	tflagSendWriteZeroes = 1 << 6
	tflagSendDF          = 1 << 7
	tflagCanMultiConn    = 1 << 8
	tflagSendCache       = 1 << 10
	tflagSendFastZero    = 1 << 11
)

// Options.
const (
	optExportName      = 1
	optAbort           = 2
	optList            = 3
	optStartTLS        = 5
	optInfo            = 6
	optGo              = 7
	optStructuredReply = 8
	optListMetaContext = 9
	optSetMetaContext  = 10
)

// Option reply types.
const (
	repAck         = 1
	repServer      = 2
	repInfo        = 3
	repMetaContext = 4

	repErrUnsup         = 1<<31 + 1
	repErrPolicy        = 1<<31 + 2
	repErrInvalid       = 1<<31 + 3
	repErrPlatform      = 1<<31 + 4
	repErrTLSReqd       = 1<<31 + 5
	repErrUnknown       = 1<<31 + 6
	repErrShutdown      = 1<<31 + 7
	repErrBlockSizeReqd = 1<<31 + 8
	repErrTooBig        = 1<<31 + 9
	repErrExtHeaderReqd = 1<<31 + 10
)

// NBD_INFO types.
const (
	infoExport      = 0
	infoName        = 1
	infoDescription = 2
	infoBlockSize   = 3
)

// Structured reply flags and types.
const (
	replyFlagDone = 1 << 0

	replyTypeNone        = 0
	replyTypeOffsetData  = 1
	replyTypeOffsetHole  = 2
	replyTypeBlockStatus = 5
	replyTypeError       = 1<<15 + 1
	replyTypeErrorOffset = 1<<15 + 2
)

// Sizes of fixed protocol structures.
const (
	requestHeaderLen    = 28
	simpleReplyLen      = 16
	structuredHeaderLen = 20
	optionHeaderLen     = 16
	optReplyHeaderLen   = 20
)

// Protocol limits.
const (
	// maxString is the longest string (export name, query, message) the
	// protocol allows.
	maxString = 4096
	// defaultMaxPayload is the maximum payload the spec says a server
	// should accept even without size negotiation, 2^25 bytes.
	defaultMaxPayload = 32 << 20
	// metaContextID is the id of base:allocation on every connection. Any
	// nonzero constant works: ids are per connection and opaque to clients.
	metaContextID = 1
	// metaAllocation is the only metadata context the server offers.
	metaAllocation = "base:allocation"
	// maxExtents bounds one BLOCK_STATUS chunk. The spec says not to send
	// more than 2^20 descriptors; a much smaller bound keeps one reply's
	// buffer at 64 KiB (so in-flight memory stays bounded), and clients
	// simply ask again from where the reply ended.
	maxExtents = 8191
)
