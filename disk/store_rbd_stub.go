//go:build !rbd

package disk

import "fmt"

// Without the rbd build tag vdisk stays pure Go: every RBD operation
// answers ErrRBDNotCompiled, and nothing links against librbd.

const rbdCompiled = false

func openRBDImage(spec RBDSpec, opts RBDOptions, readOnly bool) (rbdImage, int64, error) {
	return nil, 0, notCompiled("open", spec)
}

func createRBD(spec RBDSpec, size int64, opts RBDOptions) error {
	return notCompiled("create", spec)
}

func removeRBD(spec RBDSpec, opts RBDOptions) error {
	return notCompiled("remove", spec)
}

func snapshotRBD(spec RBDSpec, protect bool, opts RBDOptions) error {
	return notCompiled("snapshot", spec)
}

func cloneRBD(parent, child RBDSpec, opts RBDOptions) error {
	return notCompiled("clone "+parent.String()+" to", child)
}

func breakRBDLock(spec RBDSpec, opts RBDOptions) ([]RBDLocker, error) {
	return nil, notCompiled("break the lock of", spec)
}

// notCompiled is the answer of a build without RBD support. A variable,
// so that static analysis of callers does not conclude that an RBD call
// always fails: it does so only in this build.
var notCompiled = func(what string, spec RBDSpec) error {
	return fmt.Errorf("%s %s: %w", what, spec, ErrRBDNotCompiled)
}
