// Package testsupport holds what the tests of several packages share and
// nothing else uses: finding outside tools (NeedTool, NeedNbdsh) and the
// outside test material beside the checkout (SharedDir, dosfstools'
// images), running a command bounded in time (Run, Must, Cmd), building
// the vdisk binary (BuildCLI) and checking its one-line errors (OneLine),
// starting and stopping processes such as `vdisk serve` (Start,
// StartServe, Process, WaitNBD), serving an in-process server on loopback
// (Serve), starting processes while a test runs (StartProcesses, to
// provoke what a forked child shares), and image files as outside tools see them (Sfdisk, ReadAt,
// WriteAt, hashes, ExtractPartition for fsck.fat). It imports nothing of vdisk, so the tests of any
// package, the lowest included, may use it; package testworld beside it
// builds a small storage stack. It has no lock of its own but for the
// one each Process's output buffers take, a leaf.
package testsupport
