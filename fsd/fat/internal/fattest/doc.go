// Package fattest is what the tests of fsd/fat and of its on-disk layer
// (internal/ondisk) share: the outside oracles run as they need to be
// (mkfs.fat, fsck.fat, mtools: Need, Run, Must, Mkfs, FsckFields), and Vol,
// an image in memory read and edited through the on-disk layer alone, to
// place entries and chains by hand where no tool would (MoveRoot).
//
// Only tests import it. It imports internal/ondisk, so ondisk's own tests
// that use it are external (package ondisk_test); it has no lock, and a Vol
// belongs to one test.
package fattest
