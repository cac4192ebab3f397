// Package browser starts the real browser the web view's tests drive: a
// headless Chromium (Debian's chromium) through chromedp, with a fresh
// profile, no network of its own (no updates, no sync, no QUIC), stopped
// when the test ends (chromedp kills it and every child that uses its
// profile). It saves screenshots as test artifacts. It is test support
// beside testsupport, in the same layer, and imports nothing of vdisk.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of the browser, or skips the test naming the
// package that has it (scripts/test.sh installs it).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (apt-get install chromium; scripts/test.sh installs it)")
	return ""
}

// profilePrefix starts the name of every browser's profile directory,
// which every process of the browser has on its command line.
const profilePrefix = "vdisk-chromium-"

// New starts a headless Chromium with a viewport of w×h pixels and returns
// the context of its first tab; the browser is stopped when the test ends.
// Every action on the context is bounded by timeout.
func New(t testing.TB, w, h int, timeout time.Duration) context.Context {
	t.Helper()
	path := Chromium(t)
	profile, err := os.MkdirTemp("", profilePrefix)
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(w, h),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	tctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc() // stops the browser and waits for it
		os.RemoveAll(profile)
	})
	// Start it now, so that a browser that cannot start fails here.
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return tctx
}

// ArtifactDir is where a test's screenshots go: $VDISK_ARTIFACTS/TEST, or
// vdisk-artifacts/TEST in the temporary directory; it is kept after the
// test, so that a person can look at them.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("VDISK_ARTIFACTS")
	if base == "" {
		base = filepath.Join(os.TempDir(), "vdisk-artifacts")
	}
	dir := filepath.Join(base, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Screenshot saves a PNG of the viewport as NAME.png in the test's
// artifact directory and returns its path.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(ArtifactDir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// CPU is the user and system time the browsers of this package have used
// so far: every process with one of their profiles on its command line
// (the browser, its renderers, its GPU and network processes).
func CPU(t testing.TB) time.Duration {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var sum time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "--user-data-dir="+filepath.Join(os.TempDir(), profilePrefix)) {
			continue
		}
		if d, err := ProcessCPU(pid); err == nil {
			sum += d
		}
	}
	return sum
}

// ProcessCPU is the user and system time a process has used (Linux).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100, nil // in USER_HZ, 100 on Linux
}
