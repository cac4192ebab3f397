package control_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vdisk-dev/vdisk"
	"github.com/vdisk-dev/vdisk/control"
	"github.com/vdisk-dev/vdisk/export"
	"github.com/vdisk-dev/vdisk/internal/testsupport/testworld"
)

// FuzzControlAPI sends arbitrary methods, paths and bodies to the control
// API's handler: no request may panic it or hang it, and every error is
// answered with a JSON body that says what went wrong. The volumes really
// mount and dismount, filters really attach, files really get written.
func FuzzControlAPI(f *testing.F) {
	for _, seed := range []struct{ method, path, body string }{
		{"GET", "/v1/volumes", ""},
		{"GET", "/v1/exports", ""},
		{"POST", "/v1/volumes/ctl@1/mount", ""},
		{"PUT", "/v1/volumes/ctl@1/files/a/b.txt", "hello"},
		{"GET", "/v1/volumes/ctl@1/files/a/b.txt", ""},
		{"POST", "/v1/volumes/ctl@1/dismount", `{"force":true}`},
		{"POST", "/v1/volumes/ctl@2/lock", ""},
		{"POST", "/v1/volumes/ctl@2/unlock", ""},
		{"POST", "/v1/filters", `{"spec":"passthrough"}`},
		{"POST", "/v1/filters", `{"spec":"faults:read-error=2"}`},
		{"DELETE", "/v1/filters/passthrough0", ""},
		{"GET", "/v1/stack", ""},
		{"GET", "/v1/monitor?from=1&follow=false", ""},
		{"POST", "/v1/volumes/nosuch/mount", `{"force":`},
		{"GET", "/v1/volumes/ctl@1/files/../../etc/passwd", ""},
	} {
		f.Add(seed.method, seed.path, seed.body)
	}
	sys := testworld.FilterSystem(f, vdisk.Options{}, testworld.ControlImage(f, f.TempDir()), "monitor")
	ctl := control.NewServer(sys, testworld.Exports(f, sys, false, export.ClaimPerConnection))
	f.Cleanup(func() {
		if err := ctl.DismountAll(); err != nil {
			f.Errorf("DismountAll: %v", err)
		}
	})
	h := ctl.Handler()
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://vdisk"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		// A following monitor stream ends with its request.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { defer close(done); h.ServeHTTP(rec, req.WithContext(ctx)) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s %s %q: no answer in 10 s", method, path, body)
		}
		if rec.Code >= 400 {
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s %s %q: status %d with body %q, want {\"error\": ...}", method, path, body, rec.Code, rec.Body.String())
			}
		}
	})
}
