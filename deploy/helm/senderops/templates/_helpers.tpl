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

{{/*
The watched namespaces, as a JSON list: watchNamespace is one namespace, several separated by
commas, or a list; each is kept once, in order. Empty: every namespace.
*/}}
{{- define "senderops.watchNamespaces" -}}
{{- $value := .Values.watchNamespace | default (list) -}}
{{- $items := list -}}
{{- if kindIs "string" $value -}}
{{- $items = splitList "," $value -}}
{{- else if kindIs "slice" $value -}}
{{- $items = $value -}}
{{- else -}}
{{- fail (printf "watchNamespace is a namespace, namespaces separated by commas, or a list of them; not %v" $value) -}}
{{- end -}}
{{- $namespaces := list -}}
{{- range $items -}}
{{- $namespace := trim (toString .) -}}
{{- if $namespace -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" $namespace) -}}
{{- fail (printf "watchNamespace: %q is not a namespace name (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)" $namespace) -}}
{{- end -}}
{{- if not (has $namespace $namespaces) -}}
{{- $namespaces = append $namespaces $namespace -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $namespaces -}}
{{- end }}

{{/* Who the RBAC is bound to: the operator's ServiceAccount. */}}
{{- define "senderops.subjects" -}}
- kind: ServiceAccount
  name: {{ include "senderops.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/* The operator's rules, bound cluster-wide or in each watched namespace (deploy/base/rbac.yaml). */}}
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
