"""Install the local Cilium chart into the smoke cluster with the values bench/cilium_smoke.py wrote.

Environment: SMOKE_KUBECONFIG (the cluster's kubeconfig file), SMOKE_CHART (the chart tarball),
SMOKE_VALUES (a JSON file of Helm values), SMOKE_TIMEOUT (seconds for the release).
"""

import json
import os
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

provider = k8s.Provider("smoke", kubeconfig=Path(os.environ["SMOKE_KUBECONFIG"]).read_text())
release = k8s.helm.v3.Release(
    "cilium",
    name="cilium",
    chart=os.environ["SMOKE_CHART"],
    namespace="kube-system",
    values=json.loads(Path(os.environ["SMOKE_VALUES"]).read_text()),
    timeout=int(os.environ["SMOKE_TIMEOUT"]),
    # The bench waits for the agents itself, printing progress and the agents' own words.
    skip_await=True,
    opts=pulumi.ResourceOptions(provider=provider),
)
pulumi.export("status", release.status.status)
