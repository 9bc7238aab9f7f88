package main

import (
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// admissionResponse is a denial carrying the apiserver's own Invalid status, field causes included,
// as controller-runtime's CustomValidator builds it.
func admissionResponse(status metav1.Status) admissionv1.AdmissionResponse {
	return admissionv1.AdmissionResponse{Allowed: false, Result: &status}
}
