package ondisk

import (
	"errors"
	"fmt"
)

// Errors of the on-disk layer. Every error it returns wraps exactly one of
// these, with a message saying what was found where, so the FSD can map them
// to NT status codes with errors.Is.
var (
	// ErrNotFAT means a boot sector fails the recognition checks; the FSD
	// answers a mount request with STATUS_UNRECOGNIZED_VOLUME.
	ErrNotFAT = errors.New("fat: not a FAT volume")
	// ErrCorrupt means recognised metadata is inconsistent: a cluster chain
	// with a cycle, a link out of range or into a free cluster, a FAT shorter
	// than the volume needs, a bad FSInfo sector.
	ErrCorrupt = errors.New("fat: corrupt volume")
	// ErrInvalidName means a name FAT cannot store (forbidden characters,
	// too long, empty, "." or "..").
	ErrInvalidName = errors.New("fat: invalid file name")
	// ErrNoSpace means the volume has fewer free clusters than requested.
	ErrNoSpace = errors.New("fat: no free clusters left on the volume")
	// ErrRange means a caller passed a cluster number or size out of range:
	// a programming error in the caller, not a property of the volume.
	ErrRange = errors.New("fat: argument out of range")
)

func notFAT(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotFAT}, args...)...)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func badName(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidName}, args...)...)
}

func outOfRange(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRange}, args...)...)
}
