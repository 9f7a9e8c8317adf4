// Command pulumi-resource-docker is this project's own docker plugin for the pulumi_docker 5.2.0
// Python SDK: kreuzwerker's Terraform Docker provider served through pulumi-terraform-bridge, as
// pulumi-docker itself is built, because the Go module proxy refuses github.com/pulumi/pulumi-docker.
//
// schema-embed.json is not committed: supply/toolchain.py writes it into the build copy by running
// ./tfgen (the recipe's `generator`) on the same ProviderInfo (./bridge) before this is built.
package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"cilium-datapath-lab/toolchain/docker/bridge"
)

//go:embed schema-embed.json
var schema []byte

func main() {
	// What tfbridge.Main does, plus a startup log line that names this build: `-version` prints the
	// version, anything else serves the provider (the engine's own flags are parsed by provider.Main).
	if len(os.Args) == 2 && (os.Args[1] == "-version" || os.Args[1] == "--version") {
		fmt.Println(bridge.Version)
		return
	}
	ctx := context.Background()
	prov := bridge.Provider()
	prov.P.InitLogging(ctx)
	err := provider.Main("docker", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		logging.V(1).Infof("%s", bridge.Provenance())
		return tfbridge.NewProvider(ctx, host, "docker", bridge.Version, prov.P, prov, schema), nil
	})
	if err != nil {
		cmdutil.ExitError(err.Error())
	}
}
