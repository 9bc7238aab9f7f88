# The operator image: one static binary, a CA bundle and a non-root user, FROM scratch, so it builds
# offline (there is no base image to pull). scripts/image.sh builds the binary, stages the context
# and builds this file with buildah (or Docker, if you have one):
#   scripts/image.sh                                   # -> target/image/hanzo-s3-operator.tar
#   scripts/image.sh --context-only /tmp/ctx && docker build -f Dockerfile -t hanzo-s3-operator /tmp/ctx
FROM scratch
COPY hanzo-s3-operator /usr/local/bin/hanzo-s3-operator
# For HTTPS to anything outside the cluster (the operator itself only talks to the apiserver and
# tenants, whose CAs it brings).
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY passwd /etc/passwd
COPY group /etc/group
# 65532 "nonroot"; the deploy manifests also set runAsNonRoot and a read-only root filesystem.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/hanzo-s3-operator"]
CMD ["run"]
