// Package fltmgr is the filter manager: a legacy filter (a frame) that hosts
// minifilters ordered by altitude. Each minifilter registers pre- and
// post-operation callbacks per major function; on every volume the frame is
// attached to, each minifilter has an instance. For a request, pre callbacks
// run from the highest altitude down, then the request goes to the file
// system, then post callbacks run from the lowest altitude up, for the
// instances whose pre callback asked for one. A pre callback may complete
// the operation itself, skip its post callback, ask for its post callback
// to run synchronously in the dispatching goroutine, or disallow the fast
// I/O path so the request comes again as an IRP.
//
// Lock order: Manager.mu, then an Instance's mu; neither is held while a
// callback runs or an IRP is sent.
package fltmgr
