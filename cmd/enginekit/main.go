package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "show the runtime at work: supervision, calls, casts, deferred replies, crashes, two nodes", runDemo},
		{"node", "run a node: built-in engines, listeners and peer connections, until SIGINT/SIGTERM", runNode},
		{"call", "call an engine on a running node and print the reply", runCall},
		{"cast", "cast a message to an engine on a running node", runCast},
		{"ps", "list a running node's processes from its admin server (--admin URL)", runPs},
		{"status", "show a running node's connections, peers, supervisors and counters (--admin URL)", runStatus},
		{"keygen", "create a key file with a router key and engine identities", runKeygen},
		{"keys", "list the router and engine addresses in a key file", runKeys},
		{"cluster", "cluster keys and membership certificates: init, admit, show", runCluster},
		{"bench", "measure the performance targets (docs/design.md) against the machine's limits", runBench},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks errors that are the caller's words being off: the message
// is printed with a pointer to --help.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintf(stderr, "enginekit %s: %v (see 'enginekit %s --help')\n", c.name, err, c.name)
				return 2
			default:
				fmt.Fprintf(stderr, "enginekit %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "enginekit: unknown command %q (see 'enginekit help')\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "enginekit: GenServers and supervision trees in Go, with engines on other nodes reached like local ones.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: enginekit <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'enginekit <command> --help' for a command's flags.")
}

// flags is a FlagSet with its real usage printer. The flag package calls
// FlagSet.Usage on every parse error; ours is a no-op there, and parse
// prints the usage only for --help.
type flags struct {
	*flag.FlagSet
	help func()
}

// newFlags makes a FlagSet whose --help prints to stdout and whose errors
// are returned, not printed and exited on.
func newFlags(name, synopsis string, stdout io.Writer) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs, help: func() {
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "Usage: enginekit %s\n\n", synopsis)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}}
}

// parse parses flags, turning flag errors into usage errors.
func parse(fs *flags, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.help()
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
