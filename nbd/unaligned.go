package nbd

// Block-size rules.
//
// A client that asks for NBD_INFO_BLOCK_SIZE in its NBD_OPT_GO promises to
// align its requests to the export's MinBlock; the server holds it to that
// with EINVAL (see check). A client that does not (NBD_OPT_EXPORT_NAME, or
// NBD_OPT_GO without that request) promised nothing, and the spec says the
// server SHOULD then serve it at a granularity of one byte, as nbdkit does:
// an unaligned read reads the blocks around the range, an unaligned write or
// zeroing reads, modifies and writes back the partial blocks at its edges,
// so the Device only ever sees aligned requests. A TRIM is only a hint, so
// from any client it is rounded inward to whole blocks (qemu sends unaligned
// ones despite the minimum it was told) and succeeds even if nothing is left.
//
// Read-modify-write cycles of one export are serialized by exportEntry.rmw:
// two clients writing different bytes of one block must not undo each
// other. It is the one lock held across Device calls, and nothing else is
// locked while it is held.

// unaligned reports whether [off, off+n) needs a read-modify-write (or, for
// a read, a wider read): it does not start on a block boundary, or does not
// end on one short of the export's end.
func (c *conn) unaligned(off, n int64) bool {
	m := int64(c.minBlock) - 1
	if m <= 0 {
		return false
	}
	end := off + n
	return off&m != 0 || (end&m != 0 && end != int64(c.size))
}

// cover is the smallest run of whole blocks around [off, off+n), clipped to
// the export's end.
func (c *conn) cover(off, n int64) (lo, hi int64) {
	m := int64(c.minBlock) - 1
	return off &^ m, min((off+n+m)&^m, int64(c.size))
}

// inward is the run of whole blocks inside [off, off+n) (the export's end
// counting as a boundary); n is 0 when there is none.
func (c *conn) inward(off, n int64) (int64, int64) {
	m := int64(c.minBlock) - 1
	if m <= 0 {
		return off, n
	}
	lo, hi := (off+m)&^m, off+n
	if hi != int64(c.size) {
		hi &^= m
	}
	if hi <= lo {
		return lo, 0
	}
	return lo, hi - lo
}

// readUnaligned reads the blocks around [off, off+n) into r's buffer and
// points r.data at the bytes asked for.
func (c *conn) readUnaligned(r *Request, off, n int64) error {
	lo, hi := c.cover(off, n)
	r.bufp = getBuf(int(hi - lo))
	// r.data first: an OffsetError's reply sends what came before it.
	r.data = (*r.bufp)[off-lo : off-lo+n]
	return c.exp.Device.ReadAt(r, (*r.bufp)[:hi-lo], lo)
}

// writeUnaligned writes p at off by a read-modify-write of the blocks
// around it.
func (c *conn) writeUnaligned(r *Request, p []byte, off int64) error {
	lo, hi := c.cover(off, int64(len(p)))
	bufp := getBuf(int(hi - lo))
	defer putBuf(bufp)
	b := (*bufp)[:hi-lo]
	e := c.exp
	e.rmw.Lock()
	defer e.rmw.Unlock()
	if err := c.readEdges(r, b, lo, off, off+int64(len(p))); err != nil {
		return err
	}
	copy(b[off-lo:], p)
	return e.Device.WriteAt(r, b, lo)
}

// readEdges fills the partial blocks of b (the blocks from lo) that
// [off, end) does not cover whole: its first block and its last.
func (c *conn) readEdges(r *Request, b []byte, lo, off, end int64) error {
	mb := int64(c.minBlock)
	hi := lo + int64(len(b))
	head := off != lo
	if head {
		if err := c.exp.Device.ReadAt(r, b[:min(mb, hi-lo)], lo); err != nil {
			return err
		}
	}
	if tail := end &^ (mb - 1); end != hi && !(head && tail == lo) {
		if err := c.exp.Device.ReadAt(r, b[tail-lo:], tail); err != nil {
			return err
		}
	}
	return nil
}

// zeroUnaligned zeroes [off, off+n): the whole blocks inside with the
// Device's WriteZeroes, the partial blocks at the edges by read-modify-
// write. A FAST_ZERO request that needs that fails with ErrNotFast before
// anything changes, since writing is what the client wants to avoid.
func (c *conn) zeroUnaligned(r *Request, off, n int64) error {
	if r.FastZero() {
		return ErrNotFast
	}
	e := c.exp
	mb := int64(c.minBlock)
	in, inLen := c.inward(off, n)
	if inLen > 0 {
		if err := e.Device.WriteZeroes(r, in, inLen); err != nil {
			return err
		}
	} else {
		in = off + n // no whole block: the edges below cover everything
	}
	bufp := getBuf(int(2 * mb))
	defer putBuf(bufp)
	e.rmw.Lock()
	defer e.rmw.Unlock()
	edge := func(from, to int64) error { // zero [from, to) inside one block
		if from >= to {
			return nil
		}
		lo, hi := c.cover(from, to-from)
		b := (*bufp)[:hi-lo]
		if err := e.Device.ReadAt(r, b, lo); err != nil {
			return err
		}
		clear(b[from-lo : to-lo])
		return e.Device.WriteAt(r, b, lo)
	}
	if inLen == 0 {
		// Within one block, or across one boundary without a whole
		// block between.
		mid := min((off+mb)&^(mb-1), off+n)
		if err := edge(off, mid); err != nil {
			return err
		}
		return edge(mid, off+n)
	}
	if err := edge(off, in); err != nil {
		return err
	}
	return edge(in+inLen, off+n)
}
