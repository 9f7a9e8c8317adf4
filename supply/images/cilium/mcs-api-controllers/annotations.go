// Package controllers stands in for sigs.k8s.io/mcs-api/controllers, which the Go module proxy does
// not serve; see go.mod for why it holds only this constant.
package controllers

// DerivedServiceAnnotation is the ServiceImport annotation that names the Service derived from it.
const DerivedServiceAnnotation = "multicluster.kubernetes.io/derived-service"
