package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"scanagent/internal/agent"
)

// IO is the process's standard streams and environment.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	Env func(string) (string, bool)
	// Hangup delivers SIGHUP (reload the configuration); nil: never.
	Hangup <-chan os.Signal
	// Service is the service manager's view of the installed service of
	// a configuration, one line (status).
	Service func(cfgPath string) string
}

// StdIO returns the process's real streams.
func StdIO() IO {
	return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Env: os.LookupEnv, Service: serviceState}
}

// UsageError is a bad command line; it exits with status 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ExitError ends a command with Code; Msg, when not empty, is printed on
// stderr. `status` (0 ok, 1 degraded, 2 critical or down) and `doctor`
// use it after printing their own report.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// ExitCode maps Run's error to a process exit status: 0 ok, 2 usage, an
// ExitError's code, 1 else.
func ExitCode(err error) int {
	var ue *UsageError
	var ee *ExitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &ee):
		return ee.Code
	}
	return 1
}

type command struct {
	summary string
	run     func(ctx context.Context, args []string, sio IO) error
	// sub lists subcommands; run is nil when set.
	sub map[string]command
}

func commands() map[string]command {
	return map[string]command{
		"version":     {summary: "print version, commit and Go version", run: cmdVersion},
		"run":         {summary: "run the agent in the foreground: run -c FILE", run: cmdRun},
		"ports":       {summary: "list serial ports and HID devices (--json)", run: cmdPorts},
		"queue":       {summary: "inspect and repair the outbox: stats, list, retry, purge", sub: queueCommands()},
		"install":     {summary: "install the system service: install -c FILE (Windows SCM, systemd, SysV)", run: cmdService("install")},
		"uninstall":   {summary: "remove the system service (the outbox and logs stay)", run: cmdService("uninstall")},
		"start":       {summary: "start the system service", run: cmdService("start")},
		"stop":        {summary: "stop the system service (drains in-flight scans)", run: cmdService("stop")},
		"restart":     {summary: "restart the system service", run: cmdService("restart")},
		"status":      {summary: "the agent's health: exit 0 ok, 1 degraded or not configured, 2 critical or down (--json)", run: cmdStatus},
		"doctor":      {summary: "check a configuration and this machine: doctor -c FILE [--token-check]", run: cmdDoctor},
		"service-run": {summary: "run under the service manager (used by install)", run: cmdServiceRun},
		"config": {summary: "configuration tools", sub: map[string]command{
			"sample": {summary: "print the annotated sample configuration", run: cmdConfigSample},
			"check":  {summary: "validate a configuration file: config check -c FILE", run: cmdConfigCheck},
		}},
		"debug": {summary: "integration helpers", sub: map[string]command{
			"sign":  {summary: "print the signing text and signature of a request body", run: cmdDebugSign},
			"parse": {summary: "recognise a scanned payload and print it as JSON", run: cmdDebugParse},
		}},
	}
}

// Run executes the command line args (without the program name).
func Run(ctx context.Context, args []string, sio IO) error {
	return dispatch(ctx, "scanagent", commands(), args, sio)
}

func dispatch(ctx context.Context, path string, cmds map[string]command, args []string, sio IO) error {
	if len(args) == 0 {
		usage(sio.Err, path, cmds)
		return &UsageError{Msg: "missing command: run 'scanagent help' for the list"}
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" || name == "-help" {
		usage(sio.Out, path, cmds)
		return nil
	}
	if path == "scanagent" && (name == "--version" || name == "-version" || name == "-v") {
		name = "version"
	}
	c, ok := cmds[name]
	if !ok {
		usage(sio.Err, path, cmds)
		// main prefixes every message with "scanagent: "; a subcommand
		// group names itself.
		where := strings.TrimPrefix(strings.TrimPrefix(path, "scanagent"), " ")
		if where != "" {
			where += ": "
		}
		return &UsageError{Msg: fmt.Sprintf("%sunknown command %q: run '%s help' for the list", where, name, path)}
	}
	if c.sub != nil {
		return dispatch(ctx, path+" "+name, c.sub, args[1:], sio)
	}
	return c.run(ctx, args[1:], sio)
}

func usage(w io.Writer, path string, cmds map[string]command) {
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\nCommands:\n", path)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags.\n", path)
}

// newFlags returns a FlagSet that reports errors instead of exiting.
func newFlags(name, synopsis string, sio IO) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(sio.Err)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; -h returns flag.ErrHelp (exit 0), bad flags a
// UsageError (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &UsageError{Msg: fmt.Sprintf("%s: %v (run 'scanagent %s -h' for its flags)", fs.Name(), err, fs.Name())}
	}
	return nil
}

// parseAll parses flags and refuses positional arguments.
func parseAll(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return noArgs(fs)
}

func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		fs.Usage()
		return &UsageError{Msg: fmt.Sprintf("%s: unexpected arguments: %s (run 'scanagent %s -h' for its usage)", fs.Name(), strings.Join(fs.Args(), " "), fs.Name())}
	}
	return nil
}

// runOptions are what the agent takes of the process.
func runOptions(sio IO) agent.RunOptions {
	return agent.RunOptions{Stderr: sio.Err, Env: sio.Env, Hangup: sio.Hangup}
}
