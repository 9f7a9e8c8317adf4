// Package shim hands kreuzwerker's SDKv2 Docker provider to the bridge.
//
// Why a package here: the provider is in the internal package
// github.com/terraform-providers/terraform-provider-docker/internal/provider, which only packages
// under that module path may import; this module's path puts it there (see go.mod).
package shim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

// NewProvider returns kreuzwerker's SDKv2 provider (the half that holds docker_container,
// docker_network, docker_image and the rest pulumi_docker's bridged resources come from),
// reporting version as the version Terraform would see.
func NewProvider(version string) *schema.Provider {
	return provider.New(version)()
}
