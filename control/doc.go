// Package control is the control API of a running `vdisk serve --control
// SOCKET`, a front end above the System: Server answers it, Client (what
// vdisk mount, dismount, lock, unlock, monitor, filter and stack --control
// use) calls it, and the JSON types are its wire format, whose field names
// are stable. It is HTTP with JSON bodies on a unix socket only its owner
// can use (mode 0600, Listen). Errors come back as {"error": "..."} with a
// 4xx or 5xx status (Error on the client side).
//
//	GET    /v1/exports                        {"exports": [ExportStatus]}
//	GET    /v1/volumes                        {"volumes": [VolumeStatus]}
//	GET    /v1/volumes/{name}                 VolumeStatus
//	POST   /v1/volumes/{name}/mount           VolumeStatus
//	POST   /v1/volumes/{name}/dismount        {"force": bool} → VolumeStatus
//	POST   /v1/volumes/{name}/lock            VolumeStatus (FSCTL_LOCK_VOLUME, held by the server)
//	POST   /v1/volumes/{name}/unlock          VolumeStatus
//	GET    /v1/volumes/{name}/files/{path...} file contents, or {"entries": [FileEntry]} for a directory
//	PUT    /v1/volumes/{name}/files/{path...} body → the file (parents created) → FileEntry
//	GET    /v1/filters                        {"filters": [FilterInfo]}
//	POST   /v1/filters                        {"spec": "monitor"} → FilterInfo
//	DELETE /v1/filters/{id}                   {"detached": id}
//	GET    /v1/stack                          stackview.Info
//	GET    /v1/monitor?from=SEQ&follow=BOOL   monitor.Record as JSON lines, until the client or server leaves
//	                                          (follow=false: only the records held now)
//
// A volume's name is its export name: `disk@1`, or `disk` for a disk
// without a partition table.
//
// Lock order: Server.mu (serialising mount, dismount, lock and filter
// changes, and guarding the locks the API holds) before the System's and
// the mount manager's locks.
package control
