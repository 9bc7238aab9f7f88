//! The admission webhook server: AdmissionReview v1 over HTTPS (axum + rustls).
