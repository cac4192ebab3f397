// Package stackview draws a System's device stacks: Collect turns the
// device objects (System.Devices) into Info, the model every view draws,
// with the names Namer gives; Info is the JSON of `vdisk stack --json` and
// of the control API's GET /v1/stack, WriteText the indented tree of
// `vdisk stack`, WriteDot Graphviz, WriteSVG and WriteHTML the drawing of
// `vdisk stack --svg`/`--html` and of the web view (package web), laid out
// by vdisk itself. A new view is a new file here that draws Info.
//
// It reads the devices without locking them (their fields are atomic or
// set before they are published); it has no lock of its own.
package stackview
