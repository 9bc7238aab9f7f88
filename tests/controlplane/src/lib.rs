//! A real local Kubernetes control plane for tests, benchmarks and `hanzo-s3-operator dev`.
