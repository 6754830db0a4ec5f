{{/*
orgsync.components maps each service's values key to its name (image, labels, gRPC health
service name). The Graph emulator is not here: it is a test double with its own template.
*/}}
{{- define "orgsync.components" -}}
hrIngest: hr-ingest
orgModel: org-model
entraWriter: entra-writer
adWriter: ad-writer
{{- end }}

{{- define "orgsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
orgsync.fullname is "<release>-<chart>", or the release name alone when it already contains the
chart name, cut to leave room for a service suffix within the 63 characters of a DNS label.
*/}}
{{- define "orgsync.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* orgsync.componentName is a service's resource name. Context: dict root, name. */}}
{{- define "orgsync.componentName" -}}
{{- printf "%s-%s" (include "orgsync.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* orgsync.selectorLabels never change after install (a Deployment's selector is immutable). */}}
{{- define "orgsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "orgsync.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "orgsync.labels" -}}
{{ include "orgsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: orgsync
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{/* orgsync.image is <repository>/<name>@digest or :tag. Context: dict root, name, values. */}}
{{- define "orgsync.image" -}}
{{- $image := .root.Values.image }}
{{- if .values.image.digest }}
{{- printf "%s/%s@%s" $image.repository .name .values.image.digest }}
{{- else }}
{{- printf "%s/%s:%s" $image.repository .name ($image.tag | default .root.Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "orgsync.serviceAccountName" -}}
{{- if .values.serviceAccount.create }}
{{- default (include "orgsync.componentName" .) .values.serviceAccount.name }}
{{- else }}
{{- default "default" .values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "orgsync.graphEmulatorURL" -}}
{{- printf "http://%s:8080/v1.0" (include "orgsync.componentName" (dict "root" . "name" "graph-emulator")) }}
{{- end }}

{{/* orgsync.policyConfigMap is the ConfigMap holding orgsync.yaml, or "" when there is none. */}}
{{- define "orgsync.policyConfigMap" -}}
{{- if .Values.policy.existingConfigMap }}
{{- .Values.policy.existingConfigMap }}
{{- else if .Values.policy.config }}
{{- printf "%s-policy" (include "orgsync.fullname" .) }}
{{- end }}
{{- end }}

{{/* orgsync.sourceEnvName is the HR_SOURCE_<NAME>_SECRET_FILE variable hr-ingest reads. */}}
{{- define "orgsync.sourceEnvName" -}}
{{- printf "HR_SOURCE_%s_SECRET_FILE" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
orgsync.validate stops rendering with a message naming the value at fault, for what the schema
cannot express: values required only in some combinations.
*/}}
{{- define "orgsync.validate" -}}
{{- $v := .Values }}
{{- $policy := include "orgsync.policyConfigMap" . }}
{{- if and $v.orgModel.enabled (not $v.orgModel.upnDomain) (not $policy) }}
{{- fail "orgModel.upnDomain is required without a policy file: the domain of generated userPrincipalNames, e.g. corp.example.com" }}
{{- end }}
{{- if and $v.hrIngest.enabled (not $v.hrIngest.sources) (not $policy) }}
{{- fail "hrIngest.sources needs at least one HR source without a policy file: [{name: workday, existingSecret: <Secret with the whsec_ secret>, key: secret}]" }}
{{- end }}
{{- if not (or $v.hrIngest.enabled $v.orgModel.enabled $v.entraWriter.enabled $v.adWriter.enabled) }}
{{- fail "no service is enabled: set at least one of hrIngest, orgModel, entraWriter, adWriter .enabled" }}
{{- end }}
{{- if $v.entraWriter.enabled }}
{{- $azure := $v.entraWriter.azure }}
{{- $toEmulator := and $v.graphEmulator.enabled (not $v.entraWriter.graph.baseUrl) }}
{{- $credentials := 0 }}
{{- if $azure.workloadIdentity }}{{ $credentials = add1 $credentials }}{{ end }}
{{- if $azure.clientSecret.existingSecret }}{{ $credentials = add1 $credentials }}{{ end }}
{{- if $azure.clientCertificate.existingSecret }}{{ $credentials = add1 $credentials }}{{ end }}
{{- if gt $credentials 1 }}
{{- fail "entraWriter.azure: choose one credential: workloadIdentity, clientSecret.existingSecret or clientCertificate.existingSecret" }}
{{- end }}
{{- if and (eq $v.entraWriter.graph.auth "azure") (not $toEmulator) }}
{{- if eq $credentials 0 }}
{{- fail "entraWriter.azure needs a credential for graph.auth=azure: workloadIdentity: true (recommended), clientSecret.existingSecret or clientCertificate.existingSecret" }}
{{- end }}
{{- if not $azure.clientId }}
{{- fail "entraWriter.azure.clientId is required for graph.auth=azure: the application (client) id" }}
{{- end }}
{{- if and (not $azure.workloadIdentity) (not $azure.tenantId) }}
{{- fail "entraWriter.azure.tenantId is required with a client secret or certificate" }}
{{- end }}
{{- end }}
{{- if and (gt (int $v.entraWriter.replicaCount) 1) (not (or $v.redis.url $v.redis.existingSecret)) }}
{{- fail "entraWriter: more than one replica needs redis.url or redis.existingSecret, so that the replicas share one Graph write budget" }}
{{- end }}
{{- end }}
{{- if $v.adWriter.enabled }}
{{- if not $v.adWriter.ldap.url }}
{{- fail "adWriter.ldap.url is required, e.g. ldaps://dc1.corp.example.com:636" }}
{{- end }}
{{- if not $v.adWriter.ldap.bindDN }}
{{- fail "adWriter.ldap.bindDN is required: the DN ad-writer binds as" }}
{{- end }}
{{- if not $v.adWriter.ldap.bindPassword.existingSecret }}
{{- fail "adWriter.ldap.bindPassword.existingSecret is required: the Secret holding the bind password" }}
{{- end }}
{{- end }}
{{- if and $v.auth.oidc.issuer (not $v.auth.oidc.audience) }}
{{- fail "auth.oidc.audience is required with auth.oidc.issuer: the audience tokens must carry" }}
{{- end }}
{{- if and $v.grpcTLS.clientCA.existingSecret (not $v.grpcTLS.existingSecret) }}
{{- fail "grpcTLS.clientCA needs grpcTLS.existingSecret: client certificates are only asked for over TLS" }}
{{- end }}
{{- if $v.nats.credentials.type }}
{{- range $key, $name := include "orgsync.components" . | fromYaml }}
{{- if and (index $v $key).enabled (not (index $v.nats.credentials.secrets $key)) }}
{{- fail (printf "nats.credentials.secrets.%s is required with nats.credentials.type=%s: the Secret with %s's NATS credential" $key $v.nats.credentials.type $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.hrIngest.enabled $v.hrIngest.ingress.enabled (not $v.hrIngest.ingress.hosts) }}
{{- fail "hrIngest.ingress.hosts needs at least one host name when the ingress is enabled" }}
{{- end }}
{{- range $key := list "entraWriter" "adWriter" }}
{{- if (index $v $key).autoscaling.enabled }}
{{- fail (printf "%s.autoscaling: only the replica holding the writer's lease writes, so more pods add no throughput; set replicaCount instead (2 keeps a standby)" $key) }}
{{- end }}
{{- end }}
{{- range $key := list "hrIngest" "entraWriter" "adWriter" }}
{{- $autoscaling := (index $v $key).autoscaling }}
{{- if and $autoscaling.enabled (gt (int $autoscaling.minReplicas) (int $autoscaling.maxReplicas)) }}
{{- fail (printf "%s.autoscaling.minReplicas (%v) is greater than maxReplicas (%v)" $key $autoscaling.minReplicas $autoscaling.maxReplicas) }}
{{- end }}
{{- end }}
{{- end }}

{{/* orgsync.env is the environment every orgsync service shares. Context: dict root, name, values. */}}
{{- define "orgsync.env" -}}
{{- $v := .root.Values -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
# The Go runtime collects garbage harder as it nears the container's memory limit instead of
# being OOM-killed at it.
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
- name: HTTP_ADDR
  value: ":8080"
- name: GRPC_ADDR
  value: ":9090"
- name: LOG_LEVEL
  value: {{ $v.logLevel | quote }}
{{- if $v.nats.existingSecret }}
- name: NATS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.nats.existingSecret }}
      key: {{ $v.nats.urlKey }}
{{- else }}
- name: NATS_URL
  value: {{ $v.nats.url | quote }}
{{- end }}
- name: NATS_STREAM_REPLICAS
  value: {{ $v.nats.streamReplicas | quote }}
{{- if $v.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.redis.existingSecret }}
      key: {{ $v.redis.urlKey }}
{{- else if $v.redis.url }}
- name: REDIS_URL
  value: {{ $v.redis.url | quote }}
{{- end }}
{{- if include "orgsync.policyConfigMap" .root }}
- name: ORGSYNC_CONFIG
  value: /etc/orgsync/policy/orgsync.yaml
{{- end }}
{{- if $v.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $v.otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $v.otel.protocol | quote }}
{{- end }}
{{- if $v.otel.tracesSampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $v.otel.tracesSampler | quote }}
{{- end }}
{{- $attributes := list "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.pod.name=$(POD_NAME)" "k8s.node.name=$(NODE_NAME)" }}
{{- range $name, $value := $v.otel.resourceAttributes }}
{{- $attributes = append $attributes (printf "%s=%s" $name $value) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- end }}

{{/* orgsync.podScheduling is the scheduling part of a pod spec. Context: a service's values. */}}
{{- define "orgsync.podScheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}
