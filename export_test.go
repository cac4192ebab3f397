package vdisk

import (
	"github.com/vdisk-dev/vdisk/disk"
	"github.com/vdisk-dev/vdisk/iomgr"
)

// The System's own tests reach parts that no user needs: the I/O manager
// (to put a device of their own in a stack's way) and the disk driver (to
// count its devices).

// IOManager returns the System's I/O manager.
func IOManager(s *System) *iomgr.Manager { return s.manager }

// DiskDriver returns the System's disk driver.
func DiskDriver(s *System) *disk.Driver { return s.disks }
