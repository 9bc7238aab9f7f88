//go:build tools

// Package kwok pins kwok (fake nodes that turn pods Running), in a module of its own: its k8s.io
// requirements differ from the Kubernetes components'.
package kwok

import _ "sigs.k8s.io/kwok/cmd/kwok"
