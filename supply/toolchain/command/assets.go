package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gobwas/glob"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// globFiles lists the files under dir that the globs select, in order: a pattern starting with `!`
// removes what earlier ones added; `*` stops at `/`, `**` does not (gobwas/glob, as upstream).
func globFiles(dir string, globs []string) ([]string, error) {
	type rule struct {
		g       glob.Glob
		exclude bool
	}
	rules := make([]rule, 0, len(globs))
	for _, pattern := range globs {
		exclude := strings.HasPrefix(pattern, "!")
		g, err := glob.Compile(strings.TrimPrefix(pattern, "!"), '/')
		if err != nil {
			return nil, err
		}
		rules = append(rules, rule{g, exclude})
	}
	selected := map[string]bool{}
	err := fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		for _, r := range rules {
			if r.g.Match(p) {
				selected[p] = !r.exclude
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var files []string
	for p, keep := range selected {
		if keep {
			files = append(files, p)
		}
	}
	sort.Strings(files)
	return files, nil
}

// addAssets adds `assets` and `archive` to a state, each only when its paths were given.
func addAssets(state resource.PropertyMap, in commandInputs, dir string) error {
	collect := func(globs []string) (map[string]*resource.Asset, error) {
		files, err := globFiles(dir, globs)
		if err != nil {
			return nil, err
		}
		assets := map[string]*resource.Asset{}
		for _, f := range files {
			a, err := resource.NewPathAsset(filepath.Join(dir, f))
			if err != nil {
				return nil, err
			}
			assets[f] = a
		}
		return assets, nil
	}
	if in.AssetPaths != nil {
		assets, err := collect(*in.AssetPaths)
		if err != nil {
			return err
		}
		obj := resource.PropertyMap{}
		for name, a := range assets {
			obj[resource.PropertyKey(name)] = resource.NewAssetProperty(a)
		}
		state["assets"] = resource.NewProperty(obj)
	}
	if in.ArchivePaths != nil {
		assets, err := collect(*in.ArchivePaths)
		if err != nil {
			return err
		}
		members := map[string]any{}
		for name, a := range assets {
			members[name] = a
		}
		archive, err := resource.NewAssetArchive(members)
		if err != nil {
			return err
		}
		state["archive"] = resource.NewArchiveProperty(archive)
	}
	return nil
}
