{{- define "hso.labels" -}}
app.kubernetes.io/name: hanzo-s3-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
{{- define "hso.selector" -}}
app.kubernetes.io/name: hanzo-s3-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- define "hso.certManager" -}}{{ eq .Values.certificates.mode "certManager" }}{{- end }}
