package monitor

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Record is one traced operation.
type Record struct {
	Seq       uint64        `json:"seq"`
	Time      time.Time     `json:"time"`
	Requestor string        `json:"requestor"`
	Operation string        `json:"operation"`        // "IRP_MJ_READ", "IRP_MJ_FILE_SYSTEM_CONTROL/IRP_MN_MOUNT_VOLUME"
	Layer     string        `json:"layer"`            // "volume" (file system level) or "disk"
	Device    string        `json:"device"`           // the volume or disk the operation went to
	Path      string        `json:"path"`             // the file, or "DIRECT I/O" for metadata and raw access
	Offset    int64         `json:"offset,omitempty"` // for reads, writes and block operations
	Length    int64         `json:"length,omitempty"`
	Status    string        `json:"status"` // NT status name
	Duration  time.Duration `json:"duration_ns"`
	FastIO    bool          `json:"fast_io,omitempty"`
}

// String formats a record as one Filemon-style line.
func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6d %s %-18s %-6s %-44s ", r.Seq, r.Time.Format("15:04:05.000000"), r.Requestor, r.Layer, r.Operation)
	b.WriteString(r.Path)
	if r.Length > 0 || r.Offset > 0 {
		fmt.Fprintf(&b, " offset %d length %d", r.Offset, r.Length)
	}
	fmt.Fprintf(&b, " %s %s", r.Status, r.Duration.Round(time.Microsecond))
	return b.String()
}

// Ring is a bounded buffer of records shared by every monitor of a System.
type Ring struct {
	mu sync.Mutex // guards the fields below
	// Record n is at slot (n-1) % capacity, in chunks of ringChunk slots
	// allocated when first written: a short command does not pay for
	// zeroing (and faulting in) a whole ring it never fills, and the ring
	// never copies records to grow.
	chunks   [][]Record
	capacity uint64
	next     uint64 // sequence number of the next record
	waiters  []chan struct{}
}

// ringChunk is the number of records allocated at once.
const ringChunk = 1024

// NewRing returns a ring that keeps the last capacity records (at least 1).
func NewRing(capacity int) *Ring {
	if capacity < 1 {
		capacity = 1
	}
	return &Ring{chunks: make([][]Record, (capacity+ringChunk-1)/ringChunk), capacity: uint64(capacity), next: 1}
}

// slot returns where record seq lives, allocating its chunk if needed.
func (r *Ring) slot(seq uint64) *Record {
	i := (seq - 1) % r.capacity
	c := &r.chunks[i/ringChunk]
	if *c == nil {
		*c = make([]Record, min(ringChunk, r.capacity-i/ringChunk*ringChunk))
	}
	return &(*c)[i%ringChunk]
}

// Add stores a record, giving it the next sequence number, and wakes readers.
func (r *Ring) Add(rec Record) uint64 {
	r.mu.Lock()
	rec.Seq = r.next
	r.next++
	*r.slot(rec.Seq) = rec
	waiters := r.waiters
	r.waiters = nil
	r.mu.Unlock()
	for _, w := range waiters {
		close(w)
	}
	return rec.Seq
}

// Since returns the records with sequence numbers ≥ from that are still in
// the ring, oldest first, and the sequence number to ask for next. If
// records from `from` on were already dropped, the first record returned has
// a larger number: that is the gap.
func (r *Ring) Since(from uint64) ([]Record, uint64) {
	return r.AppendSince(nil, from)
}

// AppendSince is Since appending to dst, so that a reader polling the ring
// can reuse one slice.
func (r *Ring) AppendSince(dst []Record, from uint64) ([]Record, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	oldest := uint64(1)
	if r.next > r.capacity {
		oldest = r.next - r.capacity
	}
	if from < oldest {
		from = oldest
	}
	if from < r.next && dst == nil {
		dst = make([]Record, 0, r.next-from)
	}
	for s := from; s < r.next; s++ {
		dst = append(dst, *r.slot(s))
	}
	return dst, r.next
}

// Wait returns a channel closed when a record is added after the call.
func (r *Ring) Wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	r.waiters = append(r.waiters, ch)
	return ch
}

// Next returns the sequence number the next record will get.
func (r *Ring) Next() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}
