package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// commandInputs is the typed view of a command:local:Command's inputs (or of the inputs mirrored in
// its state), with secrets unwrapped: what a run needs. A nil pointer or slice means "not given".
type commandInputs struct {
	Create, Update, Delete *string
	Stdin, Dir, Logging    *string
	Interpreter            []string
	Environment            map[string]string
	AssetPaths             *[]string
	ArchivePaths           *[]string
	AddPreviousOutputInEnv *bool
}

// The inputs of pulumi-command 1.2.1's command:local:Command, and the outputs that are not inputs.
var (
	stringInputs = map[string]bool{"create": true, "update": true, "delete": true, "stdin": true, "dir": true}
	inputKeys    = map[string]bool{
		"create": true, "update": true, "delete": true, "stdin": true, "dir": true, "logging": true,
		"triggers": true, "interpreter": true, "environment": true, "assetPaths": true,
		"archivePaths": true, "addPreviousOutputInEnv": true,
	}
	outputOnlyKeys = map[string]bool{"stdout": true, "stderr": true, "assets": true, "archive": true}
	loggingValues  = []string{"stdout", "stderr", "stdoutAndStderr", "none"}
)

// checkFailure is one property Check rejects, as the engine shows it.
type checkFailure struct {
	Property string
	Reason   string
}

// plain unwraps secrets and output values (to run a command, the value is what matters).
func plain(v resource.PropertyValue) resource.PropertyValue {
	for {
		switch {
		case v.IsSecret():
			v = v.SecretValue().Element
		case v.IsOutput():
			o := v.OutputValue()
			if !o.Known {
				return resource.MakeComputed(resource.NewProperty(""))
			}
			v = o.Element
		default:
			return v
		}
	}
}

// normalize turns output values (which the engine may send once acceptOutputs is answered) into the
// plain, secret or unknown values a resource's state holds, keeping every secret where it was.
func normalize(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsOutput():
		o := v.OutputValue()
		inner := resource.MakeComputed(resource.NewProperty(""))
		if o.Known {
			inner = normalize(o.Element)
		}
		if o.Secret {
			return resource.MakeSecret(inner)
		}
		return inner
	case v.IsSecret():
		return resource.MakeSecret(normalize(v.SecretValue().Element))
	case v.IsArray():
		arr := v.ArrayValue()
		out := make([]resource.PropertyValue, len(arr))
		for i, e := range arr {
			out[i] = normalize(e)
		}
		return resource.NewProperty(out)
	case v.IsObject():
		return resource.NewProperty(normalizeMap(v.ObjectValue()))
	default:
		return v
	}
}

func normalizeMap(m resource.PropertyMap) resource.PropertyMap {
	out := make(resource.PropertyMap, len(m))
	for k, v := range m {
		out[k] = normalize(v)
	}
	return out
}

// parseInputs reads the inputs out of props (a Check/Create/Update input map, or a state map whose
// output-only keys are skipped). Unknown values are accepted only when allowUnknown (preview, Check):
// a run needs every value. The failures name each property whose type is wrong.
func parseInputs(props resource.PropertyMap, allowUnknown bool) (commandInputs, []checkFailure) {
	var in commandInputs
	var failures []checkFailure
	fail := func(key, format string, args ...any) {
		failures = append(failures, checkFailure{Property: key, Reason: fmt.Sprintf(format, args...)})
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for _, key := range keys {
		if outputOnlyKeys[key] || strings.HasPrefix(key, "__") {
			continue
		}
		if !inputKeys[key] {
			fail(key, "command:local:Command has no input %q", key)
			continue
		}
		v := plain(props[resource.PropertyKey(key)])
		if v.IsNull() {
			continue
		}
		if v.IsComputed() {
			if !allowUnknown {
				fail(key, "%s is not known yet, so the command cannot run", key)
			}
			continue
		}
		switch {
		case stringInputs[key]:
			if !v.IsString() {
				fail(key, "%s must be a string, not %s", key, v.TypeString())
				continue
			}
			s := v.StringValue()
			switch key {
			case "create":
				in.Create = &s
			case "update":
				in.Update = &s
			case "delete":
				in.Delete = &s
			case "stdin":
				in.Stdin = &s
			case "dir":
				in.Dir = &s
			}
		case key == "logging":
			if !v.IsString() || !validLogging(v.StringValue()) {
				fail(key, "logging must be one of %q, not %s", loggingValues, describe(v))
				continue
			}
			s := v.StringValue()
			in.Logging = &s
		case key == "addPreviousOutputInEnv":
			if !v.IsBool() {
				fail(key, "addPreviousOutputInEnv must be a boolean, not %s", v.TypeString())
				continue
			}
			b := v.BoolValue()
			in.AddPreviousOutputInEnv = &b
		case key == "triggers":
			if !v.IsArray() {
				fail(key, "triggers must be an array, not %s", v.TypeString())
			}
		case key == "environment":
			env, ok := stringMap(key, v, allowUnknown, fail)
			if ok {
				in.Environment = env
			}
		default: // interpreter, assetPaths, archivePaths
			list, ok := stringList(key, v, allowUnknown, fail)
			if !ok {
				continue
			}
			switch key {
			case "interpreter":
				in.Interpreter = list
			case "assetPaths":
				in.AssetPaths = &list
			case "archivePaths":
				in.ArchivePaths = &list
			}
		}
	}
	return in, failures
}

func validLogging(s string) bool {
	for _, v := range loggingValues {
		if s == v {
			return true
		}
	}
	return false
}

func describe(v resource.PropertyValue) string {
	if v.IsString() {
		return fmt.Sprintf("%q", v.StringValue())
	}
	return v.TypeString()
}

func stringList(key string, v resource.PropertyValue, allowUnknown bool,
	fail func(string, string, ...any),
) ([]string, bool) {
	if !v.IsArray() {
		fail(key, "%s must be an array of strings, not %s", key, v.TypeString())
		return nil, false
	}
	out := []string{}
	ok := true
	for i, e := range v.ArrayValue() {
		e = plain(e)
		path := fmt.Sprintf("%s[%d]", key, i)
		switch {
		case e.IsComputed():
			if !allowUnknown {
				fail(path, "%s is not known yet, so the command cannot run", path)
			}
			ok = false
		case e.IsString():
			out = append(out, e.StringValue())
		default:
			fail(path, "%s must be a string, not %s", path, e.TypeString())
			ok = false
		}
	}
	return out, ok
}

func stringMap(key string, v resource.PropertyValue, allowUnknown bool,
	fail func(string, string, ...any),
) (map[string]string, bool) {
	if !v.IsObject() {
		fail(key, "%s must be a map of strings, not %s", key, v.TypeString())
		return nil, false
	}
	out := map[string]string{}
	ok := true
	obj := v.ObjectValue()
	for _, k := range obj.StableKeys() {
		e := plain(obj[k])
		path := fmt.Sprintf("%s.%s", key, k)
		switch {
		case e.IsComputed():
			if !allowUnknown {
				fail(path, "%s is not known yet, so the command cannot run", path)
			}
			ok = false
		case e.IsString():
			out[string(k)] = e.StringValue()
		default:
			fail(path, "%s must be a string, not %s", path, e.TypeString())
			ok = false
		}
	}
	return out, ok
}

// failureError joins Check-style failures into one error, for a step that cannot run.
func failureError(failures []checkFailure) error {
	msg := "invalid command:local:Command inputs:"
	for _, f := range failures {
		msg += "\n  " + f.Reason
	}
	return fmt.Errorf("%s", msg)
}

// logStdout and logStderr say which streams become status lines (unset: both).
func (in commandInputs) logStdout() bool {
	return in.Logging == nil || *in.Logging == "stdout" || *in.Logging == "stdoutAndStderr"
}

func (in commandInputs) logStderr() bool {
	return in.Logging == nil || *in.Logging == "stderr" || *in.Logging == "stdoutAndStderr"
}
