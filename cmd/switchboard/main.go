// Command switchboard runs the Switchboard broker and its clients. Run
// "switchboard help" for the commands, each with an example, and
// "switchboard COMMAND -h" for a command's flags.
//
// Exit codes: 0 success (and -h), 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/switchboard-dev/switchboard/internal/version"
)

// command is one subcommand: its entry point and its line in the help.
type command struct {
	run     func(ctx context.Context, args []string) error
	summary string // one line: what it does
	example string // one typical use, without the leading "switchboard "
}

// commands maps a subcommand name to its command. Files register theirs in
// init.
var commands = map[string]command{}

// usageError makes main print the message and exit 2. printed: the flag
// package already said what was wrong.
type usageError struct {
	msg     string
	printed bool
}

func (e usageError) Error() string { return e.msg }

// reportedError makes main exit 1 without printing: the command has said
// what failed.
type reportedError struct{ error }

func init() {
	commands["version"] = command{runVersion, "print the version of this binary", "version"}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run runs the command in args and returns the exit code.
func run(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(os.Stdout)
		return 0
	case "-version", "--version":
		fmt.Println(version.Get())
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "switchboard: unknown command %q (run \"switchboard help\" for the list)\n", args[0])
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, args[1:])
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(reportedError)):
		return 1
	case errors.As(err, &ue):
		if !ue.printed {
			fmt.Fprintf(os.Stderr, "switchboard %s: %v\n", args[0], err)
			fmt.Fprintf(os.Stderr, "Run \"switchboard %s -h\" for its flags.\n", args[0])
		}
		return 2
	default:
		fmt.Fprintf(os.Stderr, "switchboard %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "Switchboard: a WebSocket broker that lets any program accept connections by URL.\n\n"+
		"usage: switchboard COMMAND [flags]\n\ncommands:\n")
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-11s %s\n  %-11s   e.g. switchboard %s\n", n, c.summary, "", c.example)
	}
	fmt.Fprintf(w, "\nRun \"switchboard COMMAND -h\" for a command's flags; \"switchboard --version\" for the version.\n"+
		"Exit codes: 0 success, 1 failure, 2 usage error.\n")
}

func runVersion(_ context.Context, args []string) error {
	fl := flag.NewFlagSet("version", flag.ContinueOnError)
	asJSON := fl.Bool("json", false, "print the version as JSON")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("unexpected argument %q", fl.Arg(0))}
	}
	if *asJSON {
		return printJSON(os.Stdout, version.Get())
	}
	fmt.Println(version.Get())
	return nil
}
