package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// stringList is a repeatable string flag: each use appends one value.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// parseFlags parses args with fl. -h gives flag.ErrHelp (exit 0); any other
// flag error, which the flag package has already printed with the usage,
// is a usage error (exit 2).
func parseFlags(fl *flag.FlagSet, args []string) error {
	err := fl.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{msg: err.Error(), printed: true}
}

// parseInterspersed parses args with fl, allowing flags after positional
// arguments ("listen URL --echo"), and returns the positional arguments.
func parseInterspersed(fl *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fl, args); err != nil {
			return nil, err
		}
		if fl.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fl.Arg(0))
		args = fl.Args()[1:]
	}
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// logSettings are the --log-level and --log-format flags.
type logSettings struct {
	level  *string
	format *string
}

func logFlags(fl *flag.FlagSet) logSettings {
	return logSettings{
		level:  fl.String("log-level", "info", "log level: debug, info, warn, error"),
		format: fl.String("log-format", "text", "log format: text (logfmt) or json (one object a line)"),
	}
}

// logger makes the logger the flags ask for, writing to stderr.
func (l logSettings) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*l.level)); err != nil {
		return nil, usageError{msg: fmt.Sprintf("bad --log-level: %v", err)}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch *l.format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, usageError{msg: fmt.Sprintf("bad --log-format %q: want text or json", *l.format)}
}
