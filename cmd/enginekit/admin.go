package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/enginekit/enginekit/admin"
)

// Helpers of the commands that read a node's admin server (ps, status).

// adminFlags are the flags every admin reader takes.
type adminFlags struct {
	url     string
	json    bool
	timeout time.Duration
}

func (a *adminFlags) register(fs *flags) {
	fs.StringVar(&a.url, "admin", "", "the node's admin server: http://HOST:PORT or HOST:PORT (what 'enginekit node --admin' prints) (required)")
	fs.BoolVar(&a.json, "json", false, "print the JSON documents instead of a table, for scripts")
	fs.DurationVar(&a.timeout, "timeout", 10*time.Second, "give up on the admin server after this long")
}

// client checks the flags and returns a client and the context bounding the
// command.
func (a *adminFlags) client(ctx context.Context) (*admin.Client, context.Context, context.CancelFunc, error) {
	if a.url == "" {
		return nil, nil, nil, fmt.Errorf("%w: --admin URL is required", errUsage)
	}
	if a.timeout <= 0 {
		return nil, nil, nil, fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	c, err := admin.NewClient(a.url, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: --admin: %v", errUsage, err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	return c, ctx, cancel, nil
}

// age prints how long ago t was, in the largest sensible unit.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// shortAddr shortens a router or engine address for a table: the first 12
// and last 6 characters; --json has them whole.
func shortAddr(a string) string {
	if len(a) <= 22 {
		return a
	}
	return a[:12] + "…" + a[len(a)-6:]
}

// bytesIEC prints a byte count in KiB, MiB, ...
func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// processLabel is how a table names a process: its supervisor child path,
// "proxy of PEER" for a foreign engine's proxy, or its registered name.
func processLabel(p admin.Process) string {
	switch {
	case p.Child != "":
		return p.Child
	case p.Proxy != "":
		return "proxy of " + shortAddr(p.Proxy) + " " + shortAddr(p.Name)
	}
	return shortAddr(p.Name)
}

// oneLineErr keeps a remote error on one line.
func oneLineErr(err error) error {
	if err == nil {
		return nil
	}
	if s := err.Error(); strings.ContainsRune(s, '\n') {
		return fmt.Errorf("%s", strings.ReplaceAll(s, "\n", " "))
	}
	return err
}

// table prints rows in columns two spaces apart; the columns whose right is
// true are aligned right (numbers), the others left. The last column is not
// padded.
func table(w io.Writer, right []bool, rows [][]string) {
	widths := make([]int, len(right))
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		b.Reset()
		for i, cell := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			switch {
			case right[i]:
				b.WriteString(pad + cell)
			case i == len(r)-1:
				b.WriteString(cell)
			default:
				b.WriteString(cell + pad)
			}
			if i < len(r)-1 {
				b.WriteString("  ")
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
