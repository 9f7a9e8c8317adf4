// Why this module exists: kreuzwerker's provider lives in internal/provider, and Go lets only packages
// under its module path import an internal package. Its go.mod still declares the old path
// github.com/terraform-providers/terraform-provider-docker, so this one-function module, named under
// that path and replaced into ../go.mod from ./shim, may import it and hand it to the bridge.
module github.com/terraform-providers/terraform-provider-docker/shim

go 1.26.6

require (
	github.com/hashicorp/terraform-plugin-sdk/v2 v2.40.1
	github.com/terraform-providers/terraform-provider-docker v0.0.0-20260916201441-96d331c98ff4
)
