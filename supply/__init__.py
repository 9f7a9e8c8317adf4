"""Everything this machine builds for itself offline: the Pulumi toolchain, the kind node image,
Cilium's binaries and images, and the Helm chart, each cached outside the repository by a key of
what goes into it. The lab's model (lab/), its components and its checks never import this package.
"""
