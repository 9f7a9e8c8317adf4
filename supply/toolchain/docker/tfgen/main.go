// Command tfgen writes the Pulumi schema of this project's docker plugin to the file named by its
// only argument. supply/toolchain.py builds and runs it (the recipe's `generator`) in the build copy
// before the plugin, whose main.go embeds the file: the schema is generated from the same
// ProviderInfo the plugin serves, at build time, and never committed.
//
// It is the bridge's tfgen `schema` step with examples and docs skipped: converting examples shells
// out to `pulumi convert` (absent here), and the schema's descriptions are not what the engine needs.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"
	"github.com/spf13/afero"

	"cilium-datapath-lab/toolchain/docker/bridge"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: %s <schema file to write>\n", os.Args[0])
		os.Exit(2)
	}
	if err := generate(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "tfgen: %v\n", err)
		os.Exit(1)
	}
}

func generate(out string) error {
	prov := bridge.Provider()
	if err := prov.P.InternalValidate(); err != nil {
		return fmt.Errorf("the Terraform provider is not valid: %w", err)
	}
	g, err := tfgen.NewGenerator(tfgen.GeneratorOptions{
		Package:      prov.Name,
		Version:      prov.Version,
		Language:     tfgen.Schema,
		ProviderInfo: prov,
		Root:         afero.NewMemMapFs(), // the generator's own files stay in memory; the schema is written below
		SkipDocs:     true,
		SkipExamples: true,
	})
	if err != nil {
		return err
	}
	result, err := g.Generate(context.Background())
	if err != nil {
		return err
	}
	spec := result.PackageSpec
	spec.Version = prov.Version // tfgen leaves the version out of a schema file; the plugin serves its own
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}
