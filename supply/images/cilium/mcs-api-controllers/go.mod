// Why this module exists: github.com/cilium/cilium v1.20.2 requires sigs.k8s.io/mcs-api/controllers
// v0.5.2, and the Go module proxy refuses that module at every version (and under its
// github.com/kubernetes-sigs path). Cilium's operator imports it for one string constant only,
// DerivedServiceAnnotation; this module defines that constant with the value Cilium's own
// documentation names (Documentation/network/clustermesh/mcsapi.rst), and nothing else, so the
// operator builds from proxy downloads. tests/test_cilium_images.py checks both facts against the
// Cilium module.
module sigs.k8s.io/mcs-api/controllers

go 1.26.0
