package main

import (
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// inputDiff is Diff's answer, before it becomes a gRPC response.
type inputDiff struct {
	Changed  []string                       // top-level inputs that changed, sorted
	Replaces []string                       // of those, the ones that replace the resource
	Detailed map[string]plugin.PropertyDiff // keyed by property path, e.g. "triggers[0]"
}

// diffInputs compares the inputs last applied with the new ones. Any change under `triggers`
// replaces the resource (create-before-delete: the plugin never asks for delete-before-replace);
// every other change is an in-place update. A value turning secret (or plain) counts as a change,
// as it does in the engine's own comparison, so the state's secrecy follows the program.
func diffInputs(olds, news resource.PropertyMap) inputDiff {
	d := inputDiff{Detailed: map[string]plugin.PropertyDiff{}}
	objectDiff := olds.Diff(news)
	if objectDiff == nil {
		return d
	}
	changed := map[string]bool{}
	for path, pd := range plugin.NewDetailedDiffFromObjectDiff(objectDiff, true) {
		root := rootKey(path)
		if root == "triggers" {
			pd = pd.ToReplace()
		}
		d.Detailed[path] = pd
		changed[root] = true
	}
	for k := range changed {
		d.Changed = append(d.Changed, k)
		if k == "triggers" {
			d.Replaces = append(d.Replaces, k)
		}
	}
	sort.Strings(d.Changed)
	return d
}

// rootKey is the top-level property a detailed-diff path starts with.
func rootKey(path string) string {
	parsed, err := resource.ParsePropertyPath(path)
	if err != nil || len(parsed) == 0 {
		return path
	}
	if s, ok := parsed[0].(string); ok {
		return s
	}
	return path
}

// inputsOf is the input part of a state: what the last applied inputs were when the engine has no
// old inputs to send (state written before it recorded them).
func inputsOf(state resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range state {
		if !outputOnlyKeys[string(k)] {
			out[k] = v
		}
	}
	return out
}
