package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

func TestCommandArgvUsesTheInterpreterElseShC(t *testing.T) {
	if got := commandArgv(nil, "echo a; echo b"); !reflect.DeepEqual(got, []string{"/bin/sh", "-c", "echo a; echo b"}) {
		t.Fatalf("default argv: %q", got)
	}
	interp := []string{"/bin/bash", "-euc"}
	got := commandArgv(interp, "echo $0")
	if !reflect.DeepEqual(got, []string{"/bin/bash", "-euc", "echo $0"}) {
		t.Fatalf("interpreter argv: %q", got)
	}
	if len(interp) != 2 {
		t.Fatalf("commandArgv changed its argument: %q", interp)
	}
}

func TestBuildEnvOrderLaterWins(t *testing.T) {
	base := []string{"PATH=/bin", "A=plugin", "PULUMI_COMMAND_STDOUT=from-plugin", "B=plugin"}
	env := map[string]string{"A": "input", "PULUMI_COMMAND_STDOUT": "from-input", "C": "input"}
	got := buildEnv(base, env, "previous out", "previous err", nil)
	want := []string{
		"PATH=/bin", "A=input", "PULUMI_COMMAND_STDOUT=previous out", "B=plugin", "C=input",
		"PULUMI_COMMAND_STDERR=previous err",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("env:\n got %q\nwant %q", got, want)
	}
}

func TestBuildEnvPreviousOutputsOnlyWhenNonEmptyAndWanted(t *testing.T) {
	no, yes := false, true
	base := []string{"PULUMI_COMMAND_STDOUT=plugin"}
	if got := buildEnv(base, nil, "", "", nil); !reflect.DeepEqual(got, base) {
		t.Fatalf("empty previous outputs must not be set: %q", got)
	}
	if got := buildEnv(nil, nil, "out", "err", &no); len(got) != 0 {
		t.Fatalf("addPreviousOutputInEnv=false must leave them out: %q", got)
	}
	got := buildEnv(nil, nil, "out", "", &yes)
	if !reflect.DeepEqual(got, []string{"PULUMI_COMMAND_STDOUT=out"}) {
		t.Fatalf("addPreviousOutputInEnv=true: %q", got)
	}
}

func TestTrimOneNewlineIsASuffixTrim(t *testing.T) {
	cases := map[string]string{
		"out\n":     "out",
		"out\n\n":   "out\n",
		"out":       "out",
		"  out \n":  "  out ",
		"out\r\n":   "out\r",
		"\n":        "",
		"":          "",
		"a\nb\n \n": "a\nb\n ",
	}
	for in, want := range cases {
		if got := trimOneNewline(in); got != want {
			t.Errorf("trimOneNewline(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFailureTextQuotesTheCommandAndKeepsTheOutput(t *testing.T) {
	cause := errors.New("exit status 3")
	err := failureText(cause, "echo out; echo \"boom\" >&2; exit 3", "out\nboom\n")
	want := "exit status 3: running \"echo out; echo \\\"boom\\\" >&2; exit 3\":\nout\nboom\n"
	if err.Error() != want {
		t.Fatalf("failure text:\n got %q\nwant %q", err.Error(), want)
	}
	if !errors.Is(err, cause) {
		t.Fatal("the failure must wrap its cause")
	}
}

func TestLineSplitterNeverStopsAtLongLines(t *testing.T) {
	var lines []string
	l := &lineSplitter{emit: func(s string) { lines = append(lines, s) }}
	long := strings.Repeat("x", maxLoggedLine+100)
	// Fed in awkward pieces, as a pipe delivers them.
	data := "first\n" + long + "\nafter\nno newline"
	for i := 0; i < len(data); i += 7000 {
		l.write([]byte(data[i:min(i+7000, len(data))]))
	}
	l.close()
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got %d", len(lines))
	}
	if lines[0] != "first" || lines[2] != "after" || lines[3] != "no newline" {
		t.Fatalf("lines: %q %q %q", lines[0], lines[2], lines[3])
	}
	if !strings.HasPrefix(lines[1], strings.Repeat("x", maxLoggedLine)+" … [100 more bytes") {
		t.Fatalf("long line not capped with a note: %q", lines[1][maxLoggedLine-5:])
	}
}

func TestParseInputsValidatesTypesAndTheLoggingEnum(t *testing.T) {
	props := resource.PropertyMap{
		"create":                 resource.NewProperty(3.0),
		"logging":                resource.NewProperty("loud"),
		"interpreter":            resource.NewProperty([]resource.PropertyValue{resource.NewProperty(true)}),
		"environment":            resource.NewProperty(resource.PropertyMap{"A": resource.NewProperty(1.0)}),
		"addPreviousOutputInEnv": resource.NewProperty("yes"),
		"triggers":               resource.NewProperty("not a list"),
		"bogus":                  resource.NewProperty("x"),
	}
	_, failures := parseInputs(props, true)
	got := map[string]bool{}
	for _, f := range failures {
		got[f.Property] = true
	}
	for _, want := range []string{"create", "logging", "interpreter[0]", "environment.A", "addPreviousOutputInEnv", "triggers", "bogus"} {
		if !got[want] {
			t.Errorf("no failure for %s: %+v", want, failures)
		}
	}
}

func TestParseInputsUnwrapsSecretsAndSkipsOutputs(t *testing.T) {
	props := resource.PropertyMap{
		"create":      resource.MakeSecret(resource.NewProperty("echo hi")),
		"environment": resource.NewProperty(resource.PropertyMap{"K": resource.MakeSecret(resource.NewProperty("v"))}),
		"logging":     resource.NewProperty("none"),
		"stdout":      resource.NewProperty("old"),
		"dir":         resource.NewNullProperty(),
	}
	in, failures := parseInputs(props, false)
	if len(failures) != 0 {
		t.Fatalf("failures: %+v", failures)
	}
	if *in.Create != "echo hi" || in.Environment["K"] != "v" || in.Dir != nil {
		t.Fatalf("parsed: %+v", in)
	}
	if in.logStdout() || in.logStderr() {
		t.Fatal("logging none logs nothing")
	}
	if def := (commandInputs{}); !def.logStdout() || !def.logStderr() {
		t.Fatal("unset logging logs both streams")
	}
}

func TestParseInputsUnknownsOnlyInPreview(t *testing.T) {
	props := resource.PropertyMap{"create": resource.MakeComputed(resource.NewProperty(""))}
	if _, f := parseInputs(props, true); len(f) != 0 {
		t.Fatalf("preview must accept unknowns: %+v", f)
	}
	if _, f := parseInputs(props, false); len(f) != 1 {
		t.Fatalf("a run must refuse unknowns: %+v", f)
	}
}

func diffOf(t *testing.T, olds, news resource.PropertyMap) inputDiff {
	t.Helper()
	return diffInputs(olds, news)
}

func TestDiffTriggersReplaceEvenWithUpdateSet(t *testing.T) {
	olds := resource.PropertyMap{
		"create":   resource.NewProperty("c"),
		"update":   resource.NewProperty("u"),
		"triggers": resource.NewProperty([]resource.PropertyValue{resource.NewProperty("a")}),
	}
	news := olds.Copy()
	news["triggers"] = resource.NewProperty([]resource.PropertyValue{resource.NewProperty("b")})
	d := diffOf(t, olds, news)
	if !reflect.DeepEqual(d.Replaces, []string{"triggers"}) || !reflect.DeepEqual(d.Changed, []string{"triggers"}) {
		t.Fatalf("diff: %+v", d)
	}
	if d.Detailed["triggers[0]"].Kind != plugin.DiffUpdateReplace {
		t.Fatalf("detailed: %+v", d.Detailed)
	}
	news["triggers"] = resource.NewProperty([]resource.PropertyValue{resource.NewProperty("a"), resource.NewProperty(1.0)})
	if d := diffOf(t, olds, news); d.Detailed["triggers[1]"].Kind != plugin.DiffAddReplace {
		t.Fatalf("an added trigger must replace: %+v", d.Detailed)
	}
	delete(news, "triggers")
	if d := diffOf(t, olds, news); d.Detailed["triggers"].Kind != plugin.DiffDeleteReplace {
		t.Fatalf("removed triggers must replace: %+v", d.Detailed)
	}
}

func TestDiffOtherInputsUpdateInPlace(t *testing.T) {
	olds := resource.PropertyMap{
		"create":      resource.NewProperty("c"),
		"environment": resource.NewProperty(resource.PropertyMap{"A": resource.NewProperty("1")}),
	}
	news := resource.PropertyMap{
		"create":      resource.NewProperty("c"),
		"delete":      resource.NewProperty("d"),
		"environment": resource.NewProperty(resource.PropertyMap{"A": resource.NewProperty("2")}),
	}
	d := diffOf(t, olds, news)
	if len(d.Replaces) != 0 || !reflect.DeepEqual(d.Changed, []string{"delete", "environment"}) {
		t.Fatalf("diff: %+v", d)
	}
	if d.Detailed["delete"].Kind != plugin.DiffAdd || d.Detailed["environment.A"].Kind != plugin.DiffUpdate {
		t.Fatalf("detailed: %+v", d.Detailed)
	}
	if !d.Detailed["delete"].InputDiff {
		t.Fatal("the diff is of inputs")
	}
}

func TestDiffNoChangeAndSecrecyChanges(t *testing.T) {
	olds := resource.PropertyMap{"create": resource.NewProperty("c"), "stdin": resource.NewProperty("s")}
	if d := diffOf(t, olds, olds.Copy()); len(d.Changed) != 0 || len(d.Detailed) != 0 {
		t.Fatalf("same inputs, diff: %+v", d)
	}
	news := olds.Copy()
	news["stdin"] = resource.MakeSecret(resource.NewProperty("s"))
	if d := diffOf(t, olds, news); !reflect.DeepEqual(d.Changed, []string{"stdin"}) {
		t.Fatalf("a value turning secret must be a change: %+v", d)
	}
}

func TestDiffUnknownNewValueIsAnUpdate(t *testing.T) {
	olds := resource.PropertyMap{"create": resource.NewProperty("c")}
	news := resource.PropertyMap{"create": resource.MakeComputed(resource.NewProperty(""))}
	if d := diffOf(t, olds, news); d.Detailed["create"].Kind != plugin.DiffUpdate {
		t.Fatalf("diff: %+v", d)
	}
}

func TestInputsOfDropsOutputOnlyKeys(t *testing.T) {
	state := resource.PropertyMap{
		"create": resource.NewProperty("c"), "stdout": resource.NewProperty("o"),
		"stderr": resource.NewProperty("e"),
	}
	if got := inputsOf(state); !reflect.DeepEqual(got, resource.PropertyMap{"create": resource.NewProperty("c")}) {
		t.Fatalf("inputsOf: %v", got)
	}
}

func TestStateMirrorsInputsKeepsSecretsAndNeverHidesOutputs(t *testing.T) {
	news := resource.PropertyMap{
		"create": resource.NewProperty("c"),
		"environment": resource.NewProperty(resource.PropertyMap{
			"TOKEN": resource.MakeSecret(resource.NewProperty("s3cret")),
		}),
		"stdout": resource.NewProperty("stale"),
	}
	state := stateOf(news, runResult{Stdout: "out", Stderr: "err\xff"})
	if !state["environment"].ObjectValue()["TOKEN"].IsSecret() {
		t.Fatal("a secret input must stay secret at its path")
	}
	if state["stdout"].IsSecret() || state["stdout"].StringValue() != "out" {
		t.Fatalf("stdout: %v", state["stdout"])
	}
	if state["stderr"].StringValue() != "err\uFFFD" {
		t.Fatalf("stderr must be valid UTF-8: %q", state["stderr"].StringValue())
	}
	preview := previewState(news, commandInputs{})
	if !preview["stdout"].IsComputed() || !preview["stderr"].IsComputed() {
		t.Fatal("a preview's stdout and stderr are unknown")
	}
	if _, ok := preview["assets"]; ok {
		t.Fatal("assets only when assetPaths are given")
	}
}

func TestNormalizeOutputValues(t *testing.T) {
	secretOut := resource.NewProperty(resource.Output{Element: resource.NewProperty("v"), Known: true, Secret: true})
	unknownOut := resource.NewProperty(resource.Output{Known: false})
	got := normalize(resource.NewProperty([]resource.PropertyValue{secretOut, unknownOut}))
	arr := got.ArrayValue()
	if !arr[0].IsSecret() || arr[0].SecretValue().Element.StringValue() != "v" {
		t.Fatalf("secret output: %v", arr[0])
	}
	if !arr[1].IsComputed() {
		t.Fatalf("unknown output: %v", arr[1])
	}
}

func TestRootKey(t *testing.T) {
	for path, want := range map[string]string{"triggers[0]": "triggers", "environment.A": "environment", "create": "create"} {
		if got := rootKey(path); got != want {
			t.Errorf("rootKey(%q) = %q", path, got)
		}
	}
}

func TestGlobFilesIncludesThenExcludesInOrder(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a/one.txt", "a/b/two.txt", "a/secret.txt", "top.txt"} {
		path := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := globFiles(dir, []string{"a/**", "!**secret.*"})
	if err != nil || !reflect.DeepEqual(got, []string{"a/b/two.txt", "a/one.txt"}) {
		t.Fatalf("a/** minus secrets: %q %v", got, err)
	}
	got, err = globFiles(dir, []string{"*.txt", "a/*.txt"})
	if err != nil || !reflect.DeepEqual(got, []string{"a/one.txt", "a/secret.txt", "top.txt"}) {
		t.Fatalf("* stops at /: %q %v", got, err)
	}
	if _, err := globFiles(dir, []string{"a/[unclosed"}); err == nil {
		t.Fatal("a bad glob must be an error")
	}
}
