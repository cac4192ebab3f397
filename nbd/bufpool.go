package nbd

import (
	"math/bits"
	"sync"
)

// Data buffers come from power-of-two size classes, one sync.Pool each, so
// that steady-state READ and WRITE requests allocate nothing. The pools hold
// *[]byte rather than []byte so that Put does not allocate a slice header.

const (
	minBufShift = 12 // 4 KiB: smaller requests still get a 4 KiB buffer
	maxBufShift = 32 // a payload length is a uint32
)

var bufPools [maxBufShift + 1]sync.Pool

// bufClass returns the size class holding n bytes.
func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return minBufShift
	}
	return bits.Len(uint(n - 1))
}

// getBuf returns a pooled buffer whose length is at least n.
func getBuf(n int) *[]byte {
	c := bufClass(n)
	if v := bufPools[c].Get(); v != nil {
		return v.(*[]byte)
	}
	b := make([]byte, 1<<c)
	return &b
}

// putBuf returns a buffer obtained from getBuf.
func putBuf(b *[]byte) {
	c := bufClass(cap(*b))
	if cap(*b) != 1<<c {
		return // not one of ours; let the GC have it
	}
	*b = (*b)[:cap(*b)]
	bufPools[c].Put(b)
}
