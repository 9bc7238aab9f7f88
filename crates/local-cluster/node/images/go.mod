module github.com/hanzos3/hanzo-s3-operator/tests/controlplane/node/images

go 1.26.0
