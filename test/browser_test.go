package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/enginekit/enginekit/examples/echo"
	"github.com/enginekit/enginekit/genserver"
	"github.com/enginekit/enginekit/payload"
)

// TestBrowserObserver opens the observer page of a node under load in
// headless Chromium and checks, in the rendered page, that the supervision
// tree, a process's mailbox count and a restart appear and change as the
// node changes, then saves a screenshot.
//
//	ENGINEKIT_OBSERVER_SCREENSHOT=docs/observer.png go test ./test -run Browser
//
// also writes the README's screenshot.
func TestBrowserObserver(t *testing.T) {
	chromium := chromiumPath(t)
	w := startWatched(t)
	w.load(t, 40)
	w.hold(t, 5)
	// A drop: bob's echo engine cannot be sent a type no registry knows.
	echoB, _ := w.peer.Engine("echo")
	// The transport refuses it in the sender's goroutine and counts it.
	if err := w.n.System().Cast(genserver.Name(echoB.String()), unregistered{1}); err != nil && !errors.Is(err, payload.ErrUnregisteredType) {
		t.Fatal(err)
	}
	// A crash: the supervisor restarts flaky, and the tree shows it.
	if err := w.n.System().Cast(genserver.Name(w.flaky.String()), echo.Echo{Text: "crash"}); err != nil {
		t.Fatal(err)
	}

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.WindowSize(1500, 1100),
		chromedp.UserDataDir(t.TempDir()),
	)...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer func() {
		if err := chromedp.Cancel(browser); err != nil {
			t.Logf("closing chromium: %v", err)
		}
		cancelBrowser()
	}()
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	ctx, cancel := context.WithTimeout(browser, browserWait)
	defer cancel()

	slowRow := fmt.Sprintf(`#processes tr[data-name=%q]`, w.slow.String())
	mailboxIs := func(n int) chromedp.Action[bool] {
		return chromedp.Poll[bool](fmt.Sprintf(`(() => {
			const td = document.querySelector(%q);
			return !!td && td.textContent === %q;
		})()`, slowRow+" td.mailbox", strconv.Itoa(n)), chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(browserWait))
	}
	step := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, a); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	poll := func(what string, a chromedp.Action[bool]) {
		t.Helper()
		if _, err := chromedp.Run(ctx, a); err != nil {
			// What the page showed, to tell a wrong figure from no page.
			dctx, cancel := context.WithTimeout(browser, 5*time.Second)
			defer cancel()
			page, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.querySelector("main") ? document.body.innerText : document.documentElement.outerHTML`))
			t.Fatalf("%s: %v; the page showed:\n%s", what, err, page)
		}
	}
	pollJS := func(what, expr string) {
		t.Helper()
		poll(what, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(browserWait)))
	}

	step("open /observe", chromedp.Navigate(w.srv.URL()+"/observe"))
	step("the tree appears", chromedp.WaitVisible(chromedp.CSS(`#tree li[data-supervisor="engines"] li[data-child="slow"]`)))
	pollJS("the tree shows flaky's restart",
		`(() => { const r = document.querySelector('#tree li[data-child="flaky"] .restarts'); return !!r && r.textContent.includes("1"); })()`)
	poll("the slow engine's mailbox shows 5", mailboxIs(5))
	pollJS("the node is ready: its peer is connected", `document.querySelector("#ready").textContent === "ready"`)
	pollJS("the summary counts the queued messages",
		`Number(document.querySelector("#sum-maxmailbox").textContent) >= 5 && Number(document.querySelector("#sum-mailbox").textContent.replaceAll(",", "")) >= 5`)

	// The mailbox drains by three: the page follows.
	for range 3 {
		w.gate.release <- struct{}{}
		<-w.gate.entered
	}
	poll("the slow engine's mailbox goes to 2", mailboxIs(2))

	// One process: info and reported state.
	step("select tally", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#processes tr[data-name=%q] td.pid`, w.tally.String()))))
	pollJS("tally's reported state shows",
		`(() => { const s = document.querySelector("#detail-state"); return !!s && s.textContent.includes('"casts": 40') && s.textContent.includes('"last": "alpha"'); })()`)

	// Sorting by handled puts the busiest process first.
	step("sort by handled", chromedp.Click(chromedp.CSS(`#processes th[data-sort="handled"]`)))
	pollJS("the busiest process is first",
		`(() => { const rows = [...document.querySelectorAll("#processes tbody tr")].map(r => Number(r.querySelector("td.handled").textContent.replaceAll(",", ""))); return rows.length > 3 && rows.every((v, i) => i === 0 || rows[i-1] >= v); })()`)

	// The filter narrows the list (and the next refresh asks the server for
	// just those).
	step("filter on flaky", chromedp.SendKeys(chromedp.CSS("#filter"), "flaky"))
	pollJS("only flaky is listed", `(() => { const rows = document.querySelectorAll("#processes tbody tr"); return rows.length === 1 && rows[0].textContent.includes("engines/flaky"); })()`)
	pollJS("clear the filter", `(() => { const f = document.querySelector("#filter"); f.value = ""; f.dispatchEvent(new Event("input")); return true; })()`)
	pollJS("every process is listed again", `document.querySelectorAll("#processes tbody tr").length > 5`)

	// Connections and the engines learned from the peer.
	pollJS("the peer and its two engines show",
		fmt.Sprintf(`(() => { const p = document.querySelector('#peers .peer[data-router=%q]'); return !!p && p.querySelectorAll(".engines span").length === 2 && document.querySelectorAll("#connections tbody tr[data-peer]").length >= 1; })()`, w.peer.Router().String()))
	pollJS("the drop shows under its cause",
		`(() => { const d = document.querySelector('#drops tr[data-cause="transport_unencodable"] td.nonzero'); return !!d && d.textContent === "1" && !!document.querySelector('#drops tr[data-cause="netconn_replay"]'); })()`)
	pollJS("the summary counts bob's casts as delivered", `Number(document.querySelector("#sum-delivered").textContent) > 0`)

	// A stuck process cannot hang the page: its state times out.
	step("select the slow engine", chromedp.Click(chromedp.CSS(slowRow+" td.pid")))
	pollJS("the slow engine's detail shows its mailbox and that it is stuck",
		`(() => { const m = document.querySelector("#detail-mailbox"); return !!m && m.textContent === "2" && document.querySelector("#detail .error").textContent.includes("busy or stuck"); })()`)

	// The screenshot, with tally's state shown.
	step("select tally again", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#processes tr[data-name=%q] td.pid`, w.tally.String()))))
	pollJS("tally's state shows again", `(() => { const s = document.querySelector("#detail-state"); return !!s && s.textContent.includes('"casts"'); })()`)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "observer.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	if p := screenshotPath(); p != "" {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot copied to %s", p)
	}
}
