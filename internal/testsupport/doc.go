// Package testsupport holds what the tests of several packages share and
// nothing else uses: finding the outside test material that sits next to
// the repository checkout (../shared), turning dosfstools' hex-dumped
// test images into image files, and starting processes meanwhile
// (StartProcesses). It imports nothing of vdisk, so any
// package's tests may use it; it has no lock.
package testsupport
