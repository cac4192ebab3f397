package monitor

import (
	"fmt"
	"testing"
)

// The ring keeps the last capacity records, whether it is still growing or
// already wrapping, and Since shows dropped records as a gap in sequence
// numbers.
func TestRingKeepsTheLastRecordsAndShowsGaps(t *testing.T) {
	for _, capacity := range []int{1, 3, 256, 1000} {
		r := NewRing(capacity)
		if recs, next := r.Since(0); len(recs) != 0 || next != 1 {
			t.Fatalf("capacity %d: empty ring gave %d records, next %d", capacity, len(recs), next)
		}
		for n := uint64(1); n <= 2500; n++ {
			if seq := r.Add(Record{Path: fmt.Sprint(n)}); seq != n {
				t.Fatalf("capacity %d: record %d got sequence %d", capacity, n, seq)
			}
			if n%97 != 0 && n != 2500 {
				continue
			}
			recs, next := r.Since(0)
			kept := min(n, uint64(capacity))
			if next != n+1 || uint64(len(recs)) != kept {
				t.Fatalf("capacity %d after %d: %d records, next %d", capacity, n, len(recs), next)
			}
			for i, rec := range recs {
				want := n - kept + 1 + uint64(i)
				if rec.Seq != want || rec.Path != fmt.Sprint(want) {
					t.Fatalf("capacity %d after %d: record %d is %d %q, want %d", capacity, n, i, rec.Seq, rec.Path, want)
				}
			}
			// Asking from a recent sequence number returns only what follows.
			if from := n; true {
				recs, _ := r.Since(from)
				if len(recs) != 1 || recs[0].Seq != n {
					t.Fatalf("capacity %d: Since(%d) gave %d records", capacity, from, len(recs))
				}
			}
		}
	}
}
