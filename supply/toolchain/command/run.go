package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The environment variables that carry the previous run's outputs into the next one.
const (
	envStdout = "PULUMI_COMMAND_STDOUT"
	envStderr = "PULUMI_COMMAND_STDERR"
)

// maxLoggedLine caps one status line sent to the engine; the captured outputs are never cut.
// (Upstream's scanner stopped reading at a 64 KiB line and then blocked the command forever.)
const maxLoggedLine = 64 * 1024

// runSpec is one command to run, with everything already resolved.
type runSpec struct {
	Command   string
	Argv      []string
	Dir       string
	Env       []string
	Stdin     string
	LogStdout bool
	LogStderr bool
}

// runResult is what a successful run leaves: its outputs, one trailing newline trimmed from each.
type runResult struct {
	Stdout string
	Stderr string
}

// commandArgv is the process to start: the interpreter when given, else /bin/sh -c, with the
// command string as the last argument, unquoted.
func commandArgv(interpreter []string, command string) []string {
	if len(interpreter) > 0 {
		return append(append([]string{}, interpreter...), command)
	}
	return []string{"/bin/sh", "-c", command}
}

// buildEnv is the command's environment, later entries winning: the plugin's own environment
// (base), then each `environment` entry, then the previous outputs as PULUMI_COMMAND_STDOUT/_STDERR,
// each only when non-empty and unless addPreviousOutputInEnv is false.
func buildEnv(base []string, environment map[string]string, prevStdout, prevStderr string,
	addPrevious *bool,
) []string {
	entries := append([]string{}, base...)
	keys := make([]string, 0, len(environment))
	for k := range environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		entries = append(entries, k+"="+environment[k])
	}
	if addPrevious == nil || *addPrevious {
		if prevStdout != "" {
			entries = append(entries, envStdout+"="+prevStdout)
		}
		if prevStderr != "" {
			entries = append(entries, envStderr+"="+prevStderr)
		}
	}
	return dedupEnv(entries)
}

// dedupEnv keeps one entry per name, at its first position with its last value.
func dedupEnv(entries []string) []string {
	index := map[string]int{}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		name := e
		if i := strings.IndexByte(e, '='); i >= 0 {
			name = e[:i]
		}
		if at, seen := index[name]; seen {
			out[at] = e
			continue
		}
		index[name] = len(out)
		out = append(out, e)
	}
	return out
}

// trimOneNewline removes exactly one trailing "\n" (a suffix trim, not a whitespace trim).
func trimOneNewline(s string) string {
	return strings.TrimSuffix(s, "\n")
}

// failureText is the error a failed run reports: the cause, the command Go-quoted, and everything the
// command printed on both streams (in the order it arrived), whatever `logging` says.
func failureText(cause error, command, combined string) error {
	return fmt.Errorf("%w: running %q:\n%s", cause, command, combined)
}

// runner runs commands, each in its own process group.
type runner struct {
	// grace is how long a cancelled or timed-out command's group has between SIGTERM and SIGKILL.
	grace time.Duration
	// drain is how long to keep reading after the command exited, for output still arriving from a
	// background process; a grandchild that keeps the pipes open is not waited for beyond it.
	drain time.Duration
	// logLine sends one line of a logged stream to the engine (nil: no logging).
	logLine func(line string)
}

// output collects both streams separately and together, and splits the logged ones into lines.
type output struct {
	mu                       sync.Mutex
	stdout, stderr, combined strings.Builder
}

func (o *output) add(stream *strings.Builder, p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	stream.Write(p)
	o.combined.Write(p)
}

// lineSplitter cuts a stream into lines of any length, sending each (capped at maxLoggedLine) to
// emit. It never stops consuming, so a long line cannot block the command.
type lineSplitter struct {
	emit    func(string)
	buf     []byte
	dropped int
}

func (l *lineSplitter) write(p []byte) {
	for len(p) > 0 {
		i := indexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		room := maxLoggedLine - len(l.buf)
		if room > len(chunk) {
			room = len(chunk)
		}
		l.buf = append(l.buf, chunk[:room]...)
		l.dropped += len(chunk) - room
		if i < 0 {
			return
		}
		l.flush()
		p = p[i+1:]
	}
}

func (l *lineSplitter) flush() {
	line := string(l.buf)
	if l.dropped > 0 {
		line += fmt.Sprintf(" … [%d more bytes of this line not logged; the output keeps them]", l.dropped)
	}
	l.buf, l.dropped = l.buf[:0], 0
	l.emit(line)
}

// close sends a last line that had no newline.
func (l *lineSplitter) close() {
	if len(l.buf) > 0 || l.dropped > 0 {
		l.flush()
	}
}

func indexByte(p []byte, c byte) int {
	for i, b := range p {
		if b == c {
			return i
		}
	}
	return -1
}

// pump copies one pipe into the collected output until EOF (or until the pipe is closed on us).
func pump(r io.Reader, o *output, stream *strings.Builder, lines *lineSplitter, done *sync.WaitGroup) {
	defer done.Done()
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			o.add(stream, buf[:n])
			if lines != nil {
				lines.write(buf[:n])
			}
		}
		if err != nil {
			if lines != nil {
				lines.close()
			}
			return
		}
	}
}

// run starts spec in a new process group and waits for it. ctx ending (a timeout, Cancel, the engine
// going away) terminates the whole group: SIGTERM, then SIGKILL after r.grace.
func (r *runner) run(ctx context.Context, spec runSpec) (runResult, error) {
	if err := ctx.Err(); err != nil {
		return runResult{}, failureText(stopCause(ctx), spec.Command, "")
	}
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	outR, outW, err := os.Pipe()
	if err != nil {
		return runResult{}, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(outR, outW)
		return runResult{}, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	var inR, inW *os.File
	if spec.Stdin != "" {
		if inR, inW, err = os.Pipe(); err != nil {
			closeAll(outR, outW, errR, errW)
			return runResult{}, err
		}
		cmd.Stdin = inR
	}
	startErr := cmd.Start()
	closeAll(outW, errW, inR) // the child holds its own copies
	if startErr != nil {
		closeAll(outR, errR, inW)
		return runResult{}, failureText(startErr, spec.Command, "")
	}
	pgid := cmd.Process.Pid
	if inW != nil {
		// Closed again when the run ends, which frees the writer if a background process holds stdin
		// open without reading it.
		defer closeAll(inW)
		go func() {
			// A command that never reads stdin must not hold the run up: errors (EPIPE) are expected.
			_, _ = io.WriteString(inW, spec.Stdin)
			_ = inW.Close()
		}()
	}

	var o output
	var readers sync.WaitGroup
	readers.Add(2)
	var outLines, errLines *lineSplitter
	if r.logLine != nil && spec.LogStdout {
		outLines = &lineSplitter{emit: r.logLine}
	}
	if r.logLine != nil && spec.LogStderr {
		errLines = &lineSplitter{emit: r.logLine}
	}
	go pump(outR, &o, &o.stdout, outLines, &readers)
	go pump(errR, &o, &o.stderr, errLines, &readers)
	readersDone := make(chan struct{})
	go func() { readers.Wait(); close(readersDone) }()

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var waitErr error
	stopped := false
	select {
	case waitErr = <-exited:
	case <-ctx.Done():
		stopped = true
		waitErr = r.stopGroup(pgid, exited)
	}
	// The command has exited. Read what is still in the pipes; a background process that keeps them
	// open is given r.drain and no more (or, once the run is stopped, is killed with the whole group).
	ctxDone := ctx.Done()
	if stopped {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		ctxDone = nil
	}
	drainTimer := time.NewTimer(r.drain)
	defer drainTimer.Stop()
	for waiting := true; waiting; {
		select {
		case <-readersDone:
			waiting = false
		case <-drainTimer.C:
			waiting = false
		case <-ctxDone:
			stopped, ctxDone = true, nil
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	_ = outR.SetReadDeadline(time.Now())
	_ = errR.SetReadDeadline(time.Now())
	<-readersDone
	closeAll(outR, errR)

	o.mu.Lock()
	defer o.mu.Unlock()
	if stopped {
		return runResult{}, failureText(fmt.Errorf("%w (%v)", stopCause(ctx), waitErr), spec.Command,
			o.combined.String())
	}
	if waitErr != nil {
		return runResult{}, failureText(waitErr, spec.Command, o.combined.String())
	}
	return runResult{Stdout: trimOneNewline(o.stdout.String()), Stderr: trimOneNewline(o.stderr.String())}, nil
}

// stopGroup terminates the process group: SIGTERM, then SIGKILL if the command has not exited after
// r.grace. It returns the command's exit error.
func (r *runner) stopGroup(pgid int, exited <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case err := <-exited:
		return err
	case <-time.After(r.grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-exited
	}
}

// errTimedOut and errCancelled say why a command was stopped.
var (
	errTimedOut  = errors.New("timed out: the command's process group was killed")
	errCancelled = errors.New("cancelled: the command's process group was killed")
)

func stopCause(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return errTimedOut
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return errCancelled
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			_ = f.Close()
		}
	}
}
