//! hanzo-s3-operator: an admission-first operator for Hanzo S3 tenants.
