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

{{/* The image: registry/repository@digest when a digest is set (the tag is then ignored, as a
digest names exactly one image), else registry/repository:tag, the tag defaulting to appVersion. */}}
{{- define "acm-lite.image" -}}
{{- $repo := .Values.image.repository -}}
{{- with .Values.image.registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}{{ end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Where the daemon keeps its records: systemNamespace, default the release namespace. */}}
{{- define "acm-lite.systemNamespace" -}}
{{- .Values.systemNamespace | default .Release.Namespace -}}
{{- end -}}

{{/* With rbac.scope namespace: the namespace the tenant sync is limited to. */}}
{{- define "acm-lite.tenantNamespace" -}}
{{- $ns := .Values.sync.namespace | default (first .Values.rbac.namespaces) -}}
{{- if not (has $ns .Values.rbac.namespaces) -}}
{{- fail (printf "sync.namespace %s is not one of rbac.namespaces" $ns) -}}
{{- end -}}
{{- $ns -}}
{{- end -}}

{{/* Seconds in a duration such as 15s, 1m or 1h30m (the schema admits no other shape). Call with
(list "sync.period" value). */}}
{{- define "acm-lite.seconds" -}}
{{- $name := index . 0 -}}
{{- $text := toString (index . 1) -}}
{{- $h := regexFind "[0-9.]+h" $text | trimSuffix "h" | default "0" | float64 -}}
{{- $m := regexFind "[0-9.]+m" $text | trimSuffix "m" | default "0" | float64 -}}
{{- $s := regexFind "[0-9.]+s$" $text | trimSuffix "s" | default "0" | float64 -}}
{{- $total := addf (mulf $h 3600) (mulf $m 60) $s -}}
{{- if not (gt $total 0.0) -}}
{{- fail (printf "%s %s is not a positive duration such as 15s, 1m or 1h30m" $name $text) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{- define "acm-lite.webhookSecret" -}}
{{- .Values.webhook.secretName | default (printf "%s-webhook" (include "acm-lite.name" .)) -}}
{{- end -}}
