// Package bridge is the ProviderInfo of this project's docker plugin: kreuzwerker's Terraform Docker
// provider seen through pulumi-terraform-bridge under the tokens and names the pulumi_docker 5.2.0
// Python SDK sends. The plugin (../main.go) serves it; the generator (../tfgen) derives the schema
// from it, so the two cannot disagree.
package bridge

import (
	"fmt"
	"runtime/debug"
	"strings"
	"unicode"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/terraform-providers/terraform-provider-docker/shim"
)

// Version is the plugin's version, set by the build (-X) to the recipe's version: 5.2.0, the version
// in pulumi_docker's pulumi-plugin.json, so the engine picks this plugin for that SDK.
var Version = "0.0.0-dev"

const (
	pkg = "docker"
	// KreuzwerkerModule is the module the Terraform provider is built from (go.mod's replace target).
	KreuzwerkerModule = "github.com/kreuzwerker/terraform-provider-docker"
	// BridgeModule is the module that serves it as a Pulumi provider.
	BridgeModule = "github.com/pulumi/pulumi-terraform-bridge/v3"
)

// resource is a standard token in module index: docker:index/<camelName>:<Name>.
func resource(name string) tokens.Type {
	file := string(unicode.ToLower(rune(name[0]))) + name[1:]
	return tokens.Type(fmt.Sprintf("%s:index/%s:%s", pkg, file, name))
}

// function is a data source's token: docker:index/<getName>:<getName>.
func function(name string) tokens.ModuleMember {
	return tokens.ModuleMember(fmt.Sprintf("%s:index/%s:%s", pkg, name, name))
}

// ModuleVersion reports the version of a module linked into this binary (the replacement's, when
// go.mod replaces it), or "unknown" when the binary carries no build information.
func ModuleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Replace != nil && dep.Replace.Path == path {
			return dep.Replace.Version
		}
		if dep.Path == path && dep.Replace == nil {
			return dep.Version
		}
	}
	return "unknown"
}

// Provenance says what this binary is, for the schema's description and the plugin's startup log:
// the project's own build, not Pulumi's official pulumi-resource-docker.
func Provenance() string {
	return strings.Join([]string{
		fmt.Sprintf("pulumi-resource-docker %s: the cilium-datapath-lab project's own build", Version),
		fmt.Sprintf("(not Pulumi's official binary), bridged from kreuzwerker's Terraform Docker provider %s@%s",
			KreuzwerkerModule, ModuleVersion(KreuzwerkerModule)),
		fmt.Sprintf("by %s %s for the pulumi_docker %s Python SDK.", BridgeModule, ModuleVersion(BridgeModule), Version),
	}, " ")
}

// Provider is the mapping. Tokens and renames follow pulumi-docker's own provider/resources.go, so
// every name on the wire is the SDK's; tests/test_docker_plugin.py compares the served schema with
// the installed SDK. Only pulumi-docker's native (non-Terraform) Image resource is absent.
func Provider() tfbridge.ProviderInfo {
	prov := tfbridge.ProviderInfo{
		P:           shimv2.NewProvider(shim.NewProvider(Version)),
		Name:        pkg,
		Version:     Version,
		Description: Provenance(),
		Keywords:    []string{"docker", "cilium-datapath-lab"},
		Homepage:    "https://github.com/kreuzwerker/terraform-provider-docker",
		Repository:  "https://github.com/kreuzwerker/terraform-provider-docker",
		GitHubOrg:   "kreuzwerker",
		Config: map[string]*tfbridge.SchemaInfo{
			"host": {
				Default: &tfbridge.DefaultInfo{
					Value:   "unix:///var/run/docker.sock",
					EnvVars: []string{"DOCKER_HOST"},
				},
			},
			// A list of blocks in Terraform, and not pluralised in the SDK.
			"registry_auth": {Name: "registryAuth", MaxItemsOne: tfbridge.False()},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			"docker_container": {
				Tok: resource("Container"),
				// A replacement usually keeps the container's name, which Docker allows only once.
				DeleteBeforeReplace: true,
				Fields: map[string]*tfbridge.SchemaInfo{
					"command":           {Name: "command"},          // one command, not "commands"
					"networks_advanced": {Name: "networksAdvanced"}, // not pluralised
				},
			},
			"docker_image": {
				Tok:    resource("RemoteImage"),
				Fields: map[string]*tfbridge.SchemaInfo{"name": {Name: "name"}}, // an image reference: never autonamed
			},
			"docker_network":        {Tok: resource("Network")},
			"docker_volume":         {Tok: resource("Volume")},
			"docker_config":         {Tok: resource("ServiceConfig")},
			"docker_secret":         {Tok: resource("Secret")},
			"docker_service":        {Tok: resource("Service")},
			"docker_plugin":         {Tok: resource("Plugin")},
			"docker_registry_image": {Tok: resource("RegistryImage")},
			"docker_tag":            {Tok: resource("Tag")},
			"docker_buildx_builder": {Tok: resource("BuildxBuilder")},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"docker_network":                  {Tok: function("getNetwork")},
			"docker_plugin":                   {Tok: function("getPlugin")},
			"docker_image":                    {Tok: function("getRemoteImage")},
			"docker_registry_image":           {Tok: function("getRegistryImage")},
			"docker_registry_image_manifests": {Tok: function("getRegistryImageManifests")},
			"docker_logs":                     {Tok: function("getLogs")},
		},
	}
	prov.SetAutonaming(255, "-")
	return prov
}
