package web_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
	"github.com/vdisk-dev/vdisk/internal/testsupport"
	"github.com/vdisk-dev/vdisk/internal/testsupport/browser"
)

// TestWebViewThroughputReport measures what the open page costs the
// server: fio's nbd engine, randwrite 4k at queue depth 16 for
// VDISK_WEB_BENCH_SECS (20) seconds against a `vdisk serve --filter trace
// --http`, in rounds (VDISK_WEB_BENCH_ROUNDS, 2) of a run without the page
// and a run with the page showing the trace table (or the tab
// VDISK_WEB_BENCH_TAB names: stacks, trace, blocks; the order alternating),
// (after a fill of fio's region, which is not measured), and how far the
// table lags behind the server (the page's own figures:
// the age of the newest record each time it renders). It reports; it
// asserts nothing about the figures (a timing assertion would flake). It
// runs only when VDISK_WEB_BENCH=1 (bench/web.sh sets it, after waiting
// for a quiet machine).
func TestWebViewThroughputReport(t *testing.T) {
	if os.Getenv("VDISK_WEB_BENCH") != "1" {
		t.Skip("a measurement, not a check: VDISK_WEB_BENCH=1 runs it (bench/web.sh)")
	}
	testsupport.NeedTool(t, "fio")
	browser.Chromium(t)
	secs := envInt("VDISK_WEB_BENCH_SECS", 20)
	rounds := envInt("VDISK_WEB_BENCH_ROUNDS", 2)
	var rate []string // fio at a fixed rate: the browser's cost, whatever the machine's load
	if n := envInt("VDISK_WEB_BENCH_RATE", 0); n > 0 {
		rate = []string{"--rate_iops=" + strconv.Itoa(n)}
	}
	tab := os.Getenv("VDISK_WEB_BENCH_TAB")
	if tab == "" {
		tab = "trace"
	}
	bin := testsupport.BuildCLI(t)
	img := filepath.Join(t.TempDir(), "bench.img")
	testsupport.Must(t, bin, "create", img, "--size", "1GiB", "--part", "rest:raw")
	v := &view{t: t, bin: bin, img: img, sock: testsupport.SocketPath(t)}
	v.srv = testsupport.StartServe(t, bin, img, "--control", v.sock, "--http", "127.0.0.1:0", "--filter", "trace")
	v.srv.WaitFor(t, "web view address", testsupport.DefaultTimeout, func() bool {
		m := webViewOn.FindStringSubmatch(v.srv.Stderr())
		if m != nil {
			v.url = m[1]
		}
		return m != nil
	})
	t.Cleanup(func() { _ = v.srv.Stop(30 * time.Second) })
	v.ctx = browser.New(t, 1500, 950, time.Duration(rounds*2*(secs+30)+120)*time.Second)
	uri := "nbd://" + v.srv.Addr + "/bench@1"
	// Allocate the region first, so that no measured run pays for the
	// image's first writes.
	testsupport.Cmd{Timeout: 5 * time.Minute}.Must(t, "fio", "--name=fill", "--ioengine=nbd", "--uri="+uri, "--rw=write", "--bs=1M",
		"--iodepth=4", "--size=256M")
	fio := func() float64 {
		out := filepath.Join(t.TempDir(), "fio.json")
		r := testsupport.Cmd{Timeout: time.Duration(secs+60) * time.Second}.Run(t, "fio", append([]string{"--name=randwrite", "--ioengine=nbd", "--uri=" + uri,
			"--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=256M", "--time_based", "--runtime=" + strconv.Itoa(secs),
			"--output-format=json", "--output=" + out}, rate...)...)
		b, err := os.ReadFile(out)
		var j struct {
			Jobs []struct {
				Write struct {
					IOPS float64 `json:"iops"`
				} `json:"write"`
			} `json:"jobs"`
		}
		if err == nil {
			err = json.Unmarshal(b, &j)
		}
		if r.Code != 0 || err != nil || len(j.Jobs) != 1 {
			t.Fatalf("fio: exit status %d, %v\n%s", r.Code, err, r.Output())
		}
		return j.Jobs[0].Write.IOPS
	}
	cpu := func() time.Duration { return processCPU(t, v.srv.Cmd.Process.Pid) }
	// The renderer's main thread: seconds of tasks, script, layout, style.
	metrics := func() map[string]float64 {
		r, err := chromedp.Call(v.ctx, performance.GetMetrics, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]float64{}
		for _, x := range r.Metrics {
			m[x.Name] = x.Value
		}
		return m
	}
	browserCPU := func() time.Duration { return browser.CPU(t) }
	var without, with []float64
	var lags []float64
	var received, renders int
	t.Logf("load before: %s", loadAvg())
	for r := range rounds {
		for _, page := range []bool{r%2 == 1, r%2 == 0} {
			if page {
				v.do("open the page", chromedp.Navigate(v.url))
				v.wait("the page", `document.querySelectorAll('#stack-drawing svg g.device').length > 0`)
				v.tab(tab)
				if _, err := chromedp.Call(v.ctx, performance.Enable, performance.EnableParams{}); err != nil {
					t.Fatal(err)
				}
				eval[bool](v, `(() => { const s = window.vdiskStats; s.lags.length = 0; s.maxLagMs = 0; s.records = 0; s.renders = 0; return true; })()`)
			} else {
				v.do("close the page", chromedp.Navigate("about:blank"))
			}
			c0, b0 := cpu(), browserCPU()
			var m0 map[string]float64
			if page {
				m0 = metrics()
			}
			iops := fio()
			used, bused := cpu()-c0, browserCPU()-b0
			line := fmt.Sprintf("round %d, page %-5v: %8.0f IOPS, server CPU %.1f s (%.1f µs per I/O), browser CPU %.1f s, load after %s", r+1, page, iops, used.Seconds(),
				float64(used.Microseconds())/(iops*float64(secs)), bused.Seconds(), loadAvg())
			if page {
				with = append(with, iops)
				st := eval[struct {
					Lags     []float64 `json:"lags"`
					MaxLagMs float64   `json:"maxLagMs"`
					Records  int       `json:"records"`
					Renders  int       `json:"renders"`
				}](v, `window.vdiskStats`)
				lags = append(lags, st.Lags...)
				received += st.Records
				renders += st.Renders
				m1 := metrics()
				line += fmt.Sprintf(" (renderer main thread: tasks %.2f s, script %.2f s, layout %.2f s, style %.2f s)", m1["TaskDuration"]-m0["TaskDuration"],
					m1["ScriptDuration"]-m0["ScriptDuration"], m1["LayoutDuration"]-m0["LayoutDuration"], m1["RecalcStyleDuration"]-m0["RecalcStyleDuration"])
				sorted := slices.Sorted(slices.Values(st.Lags))
				if len(sorted) > 0 {
					line += fmt.Sprintf("; table lag p50 %.0f ms, p99 %.0f ms, max %.0f ms over %d renders; %d records received",
						sorted[len(sorted)/2], sorted[len(sorted)*99/100], st.MaxLagMs, st.Renders, st.Records)
				}
			} else {
				without = append(without, iops)
			}
			t.Log(line)
		}
	}
	mean := func(x []float64) float64 {
		s := 0.0
		for _, v := range x {
			s += v
		}
		return s / float64(len(x))
	}
	slices.Sort(lags)
	report := fmt.Sprintf("randwrite 4k QD16 %d s x %d rounds: without the page %.0f IOPS, with the page %.0f IOPS: ratio with/without %.3f",
		secs, rounds, mean(without), mean(with), mean(with)/mean(without))
	if len(lags) > 0 {
		report += fmt.Sprintf("; trace table lag p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d renders, %d records received)",
			lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1], renders, received)
	}
	t.Log(report)
	t.Logf("load after: %s", loadAvg())
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// processCPU is the user and system time a process has used.
func processCPU(t *testing.T, pid int) time.Duration {
	d, err := browser.ProcessCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
