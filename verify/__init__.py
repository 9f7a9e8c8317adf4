"""Evidence that a lab's packet path is what its mode claims.

Layers, so that check logic never knows where it runs:
- `probe`: the small interface checks use (run on a node, run in a pod, capture on a node interface);
- `kind` (real labs, via docker/kubectl) and `replica` (network namespaces on any Linux host)
  implement it;
- `parsers` and `pcap` turn tool output and captures into facts;
- `checks`: the catalogue, named units that PASS or FAIL with the evidence that decided it.
"""
