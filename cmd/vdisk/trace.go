package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/vdisk-dev/vdisk/filter/monitor"
)

// recordWriter prints monitor records as Filemon-style lines, with a line
// for every gap in the sequence numbers: records the ring dropped before
// they were read.
type recordWriter struct {
	w    io.Writer
	next uint64 // the sequence number expected next; 0 before the first record
}

func (p *recordWriter) write(r monitor.Record) error {
	if p.next != 0 && r.Seq > p.next {
		if _, err := fmt.Fprintf(p.w, "------ %d records dropped ------\n", r.Seq-p.next); err != nil {
			return err
		}
	}
	p.next = r.Seq + 1
	_, err := fmt.Fprintln(p.w, r.String())
	return err
}

// tracePrinter prints the records of a ring as they arrive (the --trace of
// offline commands and of serve).
type tracePrinter struct {
	ring *monitor.Ring
	out  recordWriter
	quit chan struct{}
	wg   sync.WaitGroup
	from uint64
}

func startTrace(ring *monitor.Ring, w io.Writer) *tracePrinter {
	t := &tracePrinter{ring: ring, out: recordWriter{w: w, next: ring.Next()}, quit: make(chan struct{}), from: ring.Next()}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for {
			wait := ring.Wait()
			t.drain()
			select {
			case <-wait:
			case <-t.quit:
				t.drain()
				return
			}
		}
	}()
	return t
}

func (t *tracePrinter) drain() {
	recs, next := t.ring.Since(t.from)
	for _, r := range recs {
		_ = t.out.write(r) // stderr: nowhere else to report a failure
	}
	t.from = next
}

func (t *tracePrinter) stop() {
	close(t.quit)
	t.wg.Wait()
}
