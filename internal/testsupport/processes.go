package testsupport

import (
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
)

// StartProcesses starts processes (true(1)) from two goroutines without
// pause until the test ends, and returns how many have run so far. Every
// child shares the parent's open file descriptions from its fork until its
// exec closes them: a test of what must be released at once when closed
// (an image's lock) runs its loop meanwhile.
func StartProcesses(t testing.TB) (started func() int64) {
	t.Helper()
	prog, err := exec.LookPath("true")
	if err != nil {
		t.Fatalf("no true(1) to start: %v", err)
	}
	var stop atomic.Bool
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if exec.Command(prog).Run() == nil {
					n.Add(1)
				}
			}
		}()
	}
	t.Cleanup(func() {
		stop.Store(true)
		wg.Wait()
	})
	return n.Load
}
