package main

import (
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"github.com/vdisk-dev/vdisk/build"
	"github.com/vdisk-dev/vdisk/partition"
)

// reproducible is what SOURCE_DATE_EPOCH and --seed ask of the commands
// that write images (CLI.md): the app's Before reads it; sessions give its
// clock to the FAT driver, create and format its identities, cp its
// clamp to the times they copy, build all of it.
var reproducible build.Repro

// readRepro reads SOURCE_DATE_EPOCH and --seed into reproducible.
func readRepro(c *cli.Context) error {
	r, err := build.ReproFromEnv(os.LookupEnv, c.String("seed"), c.IsSet("seed"))
	if err != nil {
		return usageError{err}
	}
	reproducible = r
	return nil
}

// imageIdentities are the identities of the image at path in a
// reproducible command (nil otherwise): the seed's, in the namespace of
// the image's file name, so that images of other names get others.
func imageIdentities(path string) *partition.Seeded {
	s := reproducible.Identities()
	if s == nil {
		return nil
	}
	sub := s.Sub(filepath.Base(path))
	return &sub
}
