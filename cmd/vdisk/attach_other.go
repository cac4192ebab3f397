//go:build !linux

package main

import (
	"fmt"
	"runtime"
)

// The kernel NBD client is a Linux driver: elsewhere attach and detach only
// say so (serve works everywhere; connect with the platform's own client).

func attach(nbdTarget, string, uint32, uint) error {
	return fmt.Errorf("attach: the kernel NBD client is Linux only (this is %s); use an NBD client of %s, or nbd-client on Linux", runtime.GOOS, runtime.GOOS)
}

func detach(string) error {
	return fmt.Errorf("detach: the kernel NBD client is Linux only (this is %s)", runtime.GOOS)
}
