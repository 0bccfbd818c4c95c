{{/* Names, labels, the image reference and the checks values.schema.json cannot express. */}}

{{- define "akv-injector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <fullname>: the release name when it contains the chart's name (akv-injector → akv-injector). */}}
{{- define "akv-injector.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The labels of manifests/base, and Helm's. */}}
{{- define "akv-injector.labels" -}}
app.kubernetes.io/name: {{ include "akv-injector.name" . }}
app.kubernetes.io/part-of: akv-injector
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The webhook pods: the Deployment's selector, the Service's, the PDB's and the NetworkPolicy's. */}}
{{- define "akv-injector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "akv-injector.name" . }}
app.kubernetes.io/component: webhook
{{- end }}

{{/* repository:tag, or repository:tag@digest: the Deployment's image and the webhook's --image alike. */}}
{{- define "akv-injector.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "akv-injector.tlsSecretName" -}}
{{- if and (eq .Values.tls.mode "provided") .Values.tls.provided.existingSecret }}
{{- .Values.tls.provided.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "akv-injector.fullname" .) }}
{{- end }}
{{- end }}

{{/* The names the API server may dial the Service by. */}}
{{- define "akv-injector.dnsNames" -}}
{{- $service := include "akv-injector.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $service (printf "%s.%s" $service $ns) (printf "%s.%s.svc" $service $ns) (printf "%s.%s.svc.cluster.local" $service $ns) | toJson }}
{{- end }}

{{/* Namespaces never sent to the webhook: kube-system, kube-public, the release's own, then the user's. */}}
{{- define "akv-injector.excludedNamespaces" -}}
{{- concat (list "kube-system" "kube-public" .Release.Namespace) .Values.namespaces.exclude | uniq | toJson }}
{{- end }}

{{/*
Checks across values, which the schema cannot make; each failure says what to change.
*/}}
{{- define "akv-injector.validate" -}}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (le (int .Values.replicas) (int $pdb.minAvailable)) }}
{{- fail (printf "replicas (%d) must be greater than podDisruptionBudget.minAvailable (%d): otherwise no node drain can evict a webhook pod. Raise replicas, or set podDisruptionBudget.enabled=false" (int .Values.replicas) (int $pdb.minAvailable)) }}
{{- end }}
{{- $provided := .Values.tls.provided }}
{{- if eq .Values.tls.mode "provided" }}
{{- if not $provided.caBundle }}
{{- fail "tls.provided.caBundle is required with tls.mode=provided: the PEM of the CA that signed the certificate (--set-file tls.provided.caBundle=ca.crt)" }}
{{- end }}
{{- if not (contains "-----BEGIN CERTIFICATE-----" $provided.caBundle) }}
{{- fail "tls.provided.caBundle must be PEM: -----BEGIN CERTIFICATE----- ..." }}
{{- end }}
{{- if $provided.existingSecret }}
{{- if or $provided.cert $provided.key }}
{{- fail "tls.provided: give either existingSecret or cert and key, not both" }}
{{- end }}
{{- else }}
{{- if not (and $provided.cert $provided.key) }}
{{- fail "tls.provided.cert and tls.provided.key are required with tls.mode=provided (PEM; --set-file tls.provided.cert=tls.crt --set-file tls.provided.key=tls.key), or name a kubernetes.io/tls Secret in tls.provided.existingSecret" }}
{{- end }}
{{- if not (contains "-----BEGIN CERTIFICATE-----" $provided.cert) }}
{{- fail "tls.provided.cert must be PEM: -----BEGIN CERTIFICATE----- ..." }}
{{- end }}
{{- if not (regexMatch "-----BEGIN (RSA |EC )?PRIVATE KEY-----" $provided.key) }}
{{- fail "tls.provided.key must be a PEM private key: -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY) ..." }}
{{- end }}
{{- end }}
{{- else if or $provided.cert $provided.key $provided.existingSecret $provided.caBundle }}
{{- fail (printf "tls.provided.* is set but tls.mode is %s: set tls.mode=provided to use it" .Values.tls.mode) }}
{{- end }}
{{- if and .Values.tls.generate (le (int .Values.tls.generate.certValidityDays) (int .Values.tls.generate.renewBeforeDays)) }}
{{- fail (printf "tls.generate.certValidityDays (%d) must be greater than tls.generate.renewBeforeDays (%d)" (int .Values.tls.generate.certValidityDays) (int .Values.tls.generate.renewBeforeDays)) }}
{{- end }}
{{- end }}
