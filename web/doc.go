// Package web is the web view of a running `vdisk serve --http ADDR`: one
// page, embedded in the binary (static/), that shows the device stacks
// (stackview's SVG drawing), the live IRP trace (the monitor ring), a block
// map per export (where reads, writes, trims and zeroes land, and what is
// allocated) and controls (mount, dismount, lock, unlock, filters). It is
// a front end beside package control, in the same layer: the page's
// controls are the control API itself, served under /api/ by the control
// Server's own handler, so the page and the CLI do the same operations.
//
//	GET  /                    the page (with ?token=T once: sets the cookie and redirects)
//	GET  /static/...          its script, style sheet and icon
//	ANY  /api/v1/...          the control API (package control), unchanged
//	GET  /web/events?...      the page's event stream (server-sent events):
//	                          hello, state, trace and blocks events (stream.go)
//	GET  /web/allocation?export=NAME   the export's allocation per block-map cell
//	GET  /web/stack.svg       the stack drawing
//
// Access: every request needs the token Server.Token (printed with the URL
// at start): the cookie the first load sets, or an Authorization: Bearer
// header; anything else gets 401. Requests that change state (any method
// but GET and HEAD) must also come from the page's own origin (net/http's
// CrossOriginProtection: Sec-Fetch-Site and Origin) and carry the page's
// CSRF token in the X-Vdisk-CSRF header; anything else gets 403. Every
// answer carries a Content-Security-Policy that lets the page run only
// scripts and styles of its own origin. Listen binds loopback addresses
// only, unless told otherwise.
//
// Lock order: Server.mu (the set of event streams) is a leaf; the event
// streams take no lock of their own and call the control Server and the
// System only through their exported, locking methods.
package web
