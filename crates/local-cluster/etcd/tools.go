//go:build tools

// Package etcd pins the etcd server the tests run, in a module of its own so its dependencies do
// not move the Kubernetes components' versions.
package etcd

import _ "go.etcd.io/etcd/server/v3"
