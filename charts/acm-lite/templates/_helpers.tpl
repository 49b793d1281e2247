{{- define "acm-lite.name" -}}
{{- default .Chart.Name .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "acm-lite.labels" -}}
app.kubernetes.io/name: acm-lite
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "acm-lite.selector" -}}
app.kubernetes.io/name: acm-lite
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "acm-lite.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "acm-lite.name" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
