package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/vdisk-dev/vdisk/filter/monitor"
)

// tracePrinter prints monitor records as they arrive, and a line for every
// gap where records were dropped.
type tracePrinter struct {
	ring *monitor.Ring
	w    io.Writer
	quit chan struct{}
	wg   sync.WaitGroup
	next uint64
}

func startTrace(ring *monitor.Ring, w io.Writer) *tracePrinter {
	t := &tracePrinter{ring: ring, w: w, quit: make(chan struct{}), next: ring.Next()}
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
	recs, next := t.ring.Since(t.next)
	for _, r := range recs {
		if r.Seq > t.next {
			fmt.Fprintf(t.w, "------ %d records dropped ------\n", r.Seq-t.next)
		}
		fmt.Fprintln(t.w, r.String())
		t.next = r.Seq + 1
	}
	t.next = next
}

func (t *tracePrinter) stop() {
	close(t.quit)
	t.wg.Wait()
}
