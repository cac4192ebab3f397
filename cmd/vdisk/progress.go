package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a byte-count progress bar on standard error for long copies
// and formats. It draws only when stderr is a terminal (and no --trace
// shares it), so scripts, CI logs and the test suite see nothing; a nil
// *progress is valid and does nothing, which keeps the callers free of
// conditions.
type progress struct {
	bar *progressbar.ProgressBar
}

// stderrIsTerminal reports whether a person is watching standard error.
func stderrIsTerminal() bool { return term.IsTerminal(int(os.Stderr.Fd())) }

// newProgress returns a bar counting to total bytes (-1: unknown, a
// spinner), or nil when show is false or there is nothing to count.
func newProgress(w io.Writer, show bool, total int64, desc string) *progress {
	if !show || total == 0 {
		return nil
	}
	return &progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true), // sizes printed use IEC units (docs/CLI.md)
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(20),
		// Redrawing on every 1 MiB write would cost more than the write.
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
}

// add counts n more bytes done.
func (p *progress) add(n int) {
	if p != nil {
		_ = p.bar.Add(n)
	}
}

// set records done of total bytes (for callers that report absolute counts).
func (p *progress) set(done, total int64) {
	if p == nil {
		return
	}
	if p.bar.GetMax64() != total {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(done)
}

// finish draws the bar complete after success, or leaves it where it
// stopped after a failure, and ends its line so the next message starts
// on a fresh one.
func (p *progress) finish(err error) {
	if p == nil {
		return
	}
	if err == nil {
		_ = p.bar.Finish()
		return
	}
	_ = p.bar.Exit() // ends the line through OptionOnCompletion
}

// countingReader counts what passes through it on a progress bar.
type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(n)
	return n, err
}
