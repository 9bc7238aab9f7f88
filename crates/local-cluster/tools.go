//go:build tools

// Package controlplane pins the Kubernetes components the tests run. Nothing here is compiled:
// build.sh and build-node.sh build the commands below from this module, so go.mod and go.sum decide
// their versions.
package controlplane

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
