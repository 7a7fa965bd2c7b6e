package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/enginekit/enginekit/admin"
)

const psSynopsis = `ps --admin URL [--sort mailbox|handled|name|pid] [--limit N] [--filter TEXT] [--json]

Lists the processes of a running node, read from its admin server
('enginekit node --admin 127.0.0.1:PORT' prints the URL): PID, the
supervisor child it runs as (or the peer a foreign engine's proxy was
learned from, or its registered name), status, mailbox length, messages
handled, time in the current callback, and age. By default the longest
mailboxes come first: a stuck or overloaded process is at the top.

--json prints the /api/processes document, sorted the same way.`

func runPs(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("ps", psSynopsis, stdout)
	var af adminFlags
	af.register(fs)
	sortBy := fs.String("sort", "mailbox", "order: mailbox (longest first), handled (most first), name, or pid")
	limit := fs.Int("limit", 0, "print only the first N processes (0: all)")
	filter := fs.String("filter", "", "only the processes whose PID, name, supervisor child, proxied peer or status\ncontains `TEXT` (case-insensitive)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *limit < 0 {
		return fmt.Errorf("%w: --limit must not be negative", errUsage)
	}
	c, ctx, cancel, err := af.client(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if !admin.SortProcesses(nil, *sortBy) {
		return fmt.Errorf("%w: --sort %q: want mailbox, handled, name or pid", errUsage, *sortBy)
	}
	// The server sorts and cuts, so a node of 100,000 processes sends
	// only the --limit first.
	doc, err := c.Processes(ctx, admin.ProcessQuery{Q: *filter, Sort: *sortBy, Limit: *limit})
	if err != nil {
		return oneLineErr(err)
	}
	total := doc.Total
	if af.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	printProcesses(stdout, doc, total)
	return nil
}

func printProcesses(w io.Writer, doc admin.Processes, total int) {
	now := doc.Time
	if now.IsZero() {
		now = time.Now()
	}
	rows := [][]string{{"PID", "STATUS", "MAILBOX", "HANDLED", "IN CALLBACK", "AGE", "NAME"}}
	for _, p := range doc.Processes {
		inCb := "-"
		if d := time.Duration(p.InCallback); d > 0 {
			inCb = d.Round(time.Millisecond).String()
			if d < time.Millisecond {
				inCb = d.Round(time.Microsecond).String()
			}
		}
		rows = append(rows, []string{p.PID, p.Status, strconv.Itoa(p.MailboxLen), strconv.FormatUint(p.Handled, 10), inCb, age(now, p.Started), processLabel(p)})
	}
	table(w, []bool{false, false, true, true, true, true, false}, rows)
	if len(doc.Processes) < total {
		fmt.Fprintf(w, "(%d of %d processes of %s)\n", len(doc.Processes), total, doc.System)
	} else {
		fmt.Fprintf(w, "(%d processes of %s)\n", total, doc.System)
	}
}
