{{/* Names and labels shared by the chart's templates. */}}

{{- define "senderops.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's objects are named after it, or <release>-senderops when it does not say so. */}}
{{- define "senderops.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "senderops.serviceAccountName" -}}
{{- default (include "senderops.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "senderops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "senderops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "senderops.labels" -}}
{{ include "senderops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The operator's rules, bound cluster-wide or in watchNamespace (deploy/base/rbac.yaml). */}}
{{- define "senderops.crdRule" -}}
# Its own CRD, read live before any deletion at Twilio: a CRD being deleted (an uninstall) lets
# every sender go without deregistering its number.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  resourceNames: [whatsappsenders.messaging.senderops.io]
  verbs: [get]
{{- end }}

{{- define "senderops.rules" -}}
# Watch senders; patch them to add and remove the finalizer.
- apiGroups: [messaging.senderops.io]
  resources: [whatsappsenders]
  verbs: [list, watch, patch]
# Mirror Twilio into .status.
- apiGroups: [messaging.senderops.io]
  resources: [whatsappsenders/status]
  verbs: [patch]
# Read-only: credentials and one-time codes (watched by metadata only).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
# An Event on every transition; create only (each through a fresh Recorder: no series to patch).
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create]
{{- end }}
