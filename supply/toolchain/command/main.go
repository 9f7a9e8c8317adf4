// Command pulumi-resource-command is the cilium-datapath-lab project's own build of the `command`
// resource plugin. It serves command:local:Command to the unchanged pulumi_command 1.2.1 Python SDK and
// keeps pulumi-command 1.2.1's contract (docs/command-plugin.md); it is not Pulumi's official binary.
//
// Why it exists: the Go module proxy this project's machines reach refuses the official provider module
// and the pulumi-go-provider framework it is written on, so this plugin stands on sdk/v3 alone.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	pprovider "github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is set at build time (-ldflags "-X main.version=1.2.1", the recipe's version_var); a build
// without it says so instead of passing for a release.
var version = "0.0.0-dev"

// identity is what the startup log line, `-version` and the schema say this binary is.
func identity() string {
	return fmt.Sprintf("pulumi-resource-command %s: the cilium-datapath-lab project's own build, "+
		"keeping pulumi-command 1.2.1's contract for command:local:Command; not Pulumi's official binary", version)
}

func main() {
	// `-version` answers without starting a server: `pulumi plugin ls` shows only the directory's
	// version, so this is how a person (or a test) asks the binary itself what it is.
	if len(os.Args) == 2 && (os.Args[1] == "-version" || os.Args[1] == "--version") {
		fmt.Println(identity())
		return
	}
	err := pprovider.Main("command", func(host *pprovider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		logging.Infof("%s", identity())
		return newProvider(host), nil
	})
	if err != nil {
		cmdutil.ExitError(err.Error())
	}
}
