package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These run real processes through /bin/sh: the runner is where a hang or a leak would hide.

func testRunner(logged *[]string) *runner {
	var mu sync.Mutex
	r := &runner{grace: 500 * time.Millisecond, drain: 500 * time.Millisecond}
	if logged != nil {
		r.logLine = func(line string) { mu.Lock(); *logged = append(*logged, line); mu.Unlock() }
	}
	return r
}

func shSpec(command string) runSpec {
	return runSpec{Command: command, Argv: commandArgv(nil, command), Env: os.Environ(), LogStdout: true, LogStderr: true}
}

func TestRunCapturesStreamsSeparatelyAndTrimsOneNewline(t *testing.T) {
	res, err := testRunner(nil).run(context.Background(), shSpec("printf 'out\\n\\n'; printf 'err\\n' >&2"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "out\n" || res.Stderr != "err" {
		t.Fatalf("result: %+v", res)
	}
}

func TestRunFailureTextHasTheExitStatusAndBothStreams(t *testing.T) {
	_, err := testRunner(nil).run(context.Background(), shSpec("echo out; echo boom >&2; exit 3"))
	want := "exit status 3: running \"echo out; echo boom >&2; exit 3\":\n"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error: %v", err)
	}
	if !strings.Contains(err.Error(), "out\n") || !strings.Contains(err.Error(), "boom\n") {
		t.Fatalf("output missing: %q", err.Error())
	}
}

func TestRunStdinAndDir(t *testing.T) {
	dir := t.TempDir()
	spec := shSpec("cat; pwd")
	spec.Stdin, spec.Dir = "from stdin\n", dir
	res, err := testRunner(nil).run(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if res.Stdout != "from stdin\n"+real {
		t.Fatalf("stdout: %q", res.Stdout)
	}
	spec.Dir = filepath.Join(dir, "missing")
	if _, err := testRunner(nil).run(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("a missing dir must fail: %v", err)
	}
	spec = shSpec("cat")
	if res, err := testRunner(nil).run(context.Background(), spec); err != nil || res.Stdout != "" {
		t.Fatalf("no stdin reads the null device: %+v %v", res, err)
	}
}

func TestRunKeepsDrainingALineOver64KiB(t *testing.T) {
	var logged []string
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := testRunner(&logged).run(ctx, shSpec("head -c 200000 /dev/zero | tr '\\0' x; echo; echo after"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != 200000+1+5 || !strings.HasSuffix(res.Stdout, "\nafter") {
		t.Fatalf("stdout has %d bytes", len(res.Stdout))
	}
	if len(logged) != 2 || logged[1] != "after" || !strings.Contains(logged[0], "more bytes of this line not logged") {
		t.Fatalf("logged %d lines", len(logged))
	}
}

func TestRunLogsOnlyTheChosenStreams(t *testing.T) {
	var logged []string
	spec := shSpec("echo to-out; echo to-err >&2")
	spec.LogStdout = false
	if _, err := testRunner(&logged).run(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if strings.Join(logged, ",") != "to-err" {
		t.Fatalf("logged: %q", logged)
	}
}

// pidIn reads the pid a command wrote to file.
func pidIn(t *testing.T, file string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// alive reports whether the process runs (a zombie nobody has reaped yet runs nothing).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestRunTimeoutKillsTheWholeProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	defer func() { // leave nothing behind, whatever the outcome
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}()
	ctx, cancel := context.WithTimeoutCause(context.Background(), 500*time.Millisecond, errors.New("timed out after 500ms"))
	defer cancel()
	start := time.Now()
	// The grandchild ignores SIGTERM, so only the group's SIGKILL ends it.
	_, err := testRunner(nil).run(ctx, shSpec("sh -c 'trap \"\" TERM; echo $$ > "+pidFile+"; sleep 60' & wait"))
	if err == nil || !strings.Contains(err.Error(), "timed out after 500ms") {
		t.Fatalf("error: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the timeout took %s", took)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pidIn(t, pidFile)) {
		if time.Now().After(deadline) {
			t.Fatal("the grandchild outlived the timeout")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunDoesNotWaitForeverOnPipesABackgroundProcessHolds(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "daemon.pid")
	start := time.Now()
	res, err := testRunner(nil).run(context.Background(), shSpec("sleep 30 & echo $! > "+pidFile+"; echo started"))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("waited %s for the background process's pipes", took)
	}
	if res.Stdout != "started" {
		t.Fatalf("stdout: %q", res.Stdout)
	}
	// It succeeded, so the background process is left alone; the test ends it.
	pid := pidIn(t, pidFile)
	defer func() { _ = syscall.Kill(pid, syscall.SIGKILL) }()
	if !alive(pid) {
		t.Fatal("a successful command's background process must not be killed")
	}
}

func TestRunRefusesToStartOnceCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := testRunner(nil).run(ctx, shSpec("echo never")); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("error: %v", err)
	}
}
