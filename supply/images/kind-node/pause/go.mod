// The pod sandbox's pause process: the project's own, a static binary with no dependencies.
module cilium-datapath-lab/images/kind-node/pause

go 1.26.0
