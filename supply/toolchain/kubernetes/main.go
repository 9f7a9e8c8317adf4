// Command pulumi-resource-kubernetes serves the Kubernetes provider of the module pinned in go.mod.
//
// Why our own main: upstream's main embeds schema-embed.json and terraform-mapping-embed.json, which
// its release build generates and git ignores, so the module zip lacks them. toolchain/build.sh writes
// both next to a copy of this file in the build directory (from the schema.json and
// terraform-mapping.json the module does carry, with the schema's version set) before `go build`.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, schema, terraformMapping)
}
