"""A secret output and a kubernetes provider that renders YAML instead of talking to a cluster.

The test sets PROBE_SECRET (a fresh random value, to look for in the state) and PROBE_RENDER_DIR.
"""

import os

import pulumi
import pulumi_kubernetes as k8s

render = k8s.Provider("render", render_yaml_to_directory=os.environ["PROBE_RENDER_DIR"])
config_map = k8s.core.v1.ConfigMap(
    "probe",
    metadata={"name": "probe", "namespace": "default"},
    data={"rendered-by": "pulumi-resource-kubernetes"},
    opts=pulumi.ResourceOptions(provider=render),
)
pulumi.export("token", pulumi.Output.secret(os.environ["PROBE_SECRET"]))
pulumi.export("configMap", config_map.metadata.name)
