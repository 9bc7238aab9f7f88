//! Certificates: the operator CA kept in a Secret, in-memory serving certificates, caBundle injection and rotation.
