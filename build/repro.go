package build

import (
	"fmt"
	"strconv"
	"time"

	"github.com/vdisk-dev/vdisk/fsd/fat"
	"github.com/vdisk-dev/vdisk/partition"
)

// Repro is what SOURCE_DATE_EPOCH and a seed (vdisk's --seed) ask of every
// command that writes an image, vdisk build and create, format, cp, mkdir
// and label alike: the same inputs give the same bytes. With either:
//
//   - every FAT timestamp is the epoch, or earlier (a copied file keeps an
//     older mtime), written in UTC: never the clock, never the local zone;
//   - every identity left open (GPT disk and partition GUIDs, the MBR disk
//     signature, FAT volume serials) is a name-based GUID of the seed (or
//     of the epoch when there is no seed) and of the thing's name.
//
// A seed without an epoch stamps FAT's first day, 1980-01-01.
type Repro struct {
	Epoch  time.Time // SOURCE_DATE_EPOCH; zero when unset
	Seed   string
	Seeded bool
}

// fatEpoch is the earliest time FAT stores: with a seed and no
// SOURCE_DATE_EPOCH, every timestamp of a reproducible command.
var fatEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// ReproFromEnv reads SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/)
// with lookup and adds the seed, if given.
func ReproFromEnv(lookup func(string) (string, bool), seed string, seeded bool) (Repro, error) {
	r := Repro{Seed: seed, Seeded: seeded}
	v, ok := lookup("SOURCE_DATE_EPOCH")
	if !ok || v == "" {
		return r, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || v[0] < '0' || v[0] > '9' {
		return r, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", v)
	}
	r.Epoch = time.Unix(n, 0).UTC()
	return r, nil
}

// Active reports whether the images written are to be reproducible.
func (r Repro) Active() bool { return r.Seeded || !r.Epoch.IsZero() }

// Now is the time a reproducible command stamps; ok is false when it may
// use the clock.
func (r Repro) Now() (time.Time, bool) {
	switch {
	case !r.Epoch.IsZero():
		return r.Epoch.UTC(), true
	case r.Seeded:
		return fatEpoch, true
	}
	return time.Time{}, false
}

// Stamp is the modification time a copied file gets: the host's, clamped
// to Now when reproducible.
func (r Repro) Stamp(host time.Time) time.Time {
	if now, ok := r.Now(); ok && (host.IsZero() || host.After(now)) {
		return now
	}
	return host
}

// Identities gives the identities of a reproducible command; nil when it
// may draw them at random.
func (r Repro) Identities() *partition.Seeded {
	var s partition.Seeded
	switch {
	case r.Seeded:
		s = partition.NewSeeded(r.Seed)
	case !r.Epoch.IsZero():
		s = partition.NewSeeded("SOURCE_DATE_EPOCH=" + strconv.FormatInt(r.Epoch.Unix(), 10))
	default:
		return nil
	}
	return &s
}

// FAT is the FAT driver's configuration for it: a clock stopped at Now,
// in UTC; the zero Options (the clock, local time) when not reproducible.
func (r Repro) FAT() fat.Options {
	now, ok := r.Now()
	if !ok {
		return fat.Options{}
	}
	return fat.Options{Now: func() time.Time { return now }, Location: time.UTC}
}
