{{/*
Security settings of a service: its NATS credential and TLS, and for the services with an API
(org-model's gRPC, the writers' admin endpoints) the auth and gRPC TLS settings. Every secret is
mounted from a Secret as a file; only names and paths appear in the pod spec.
Context of each template: dict root, name, values.
*/}}

{{/* orgsync.natsSecret is the Secret with this service's NATS credential, or "". */}}
{{- define "orgsync.natsSecret" -}}
{{- $keys := dict "hr-ingest" "hrIngest" "org-model" "orgModel" "entra-writer" "entraWriter" "ad-writer" "adWriter" }}
{{- $credentials := .root.Values.nats.credentials }}
{{- if $credentials.type }}
{{- index $credentials.secrets (get $keys .name) | default "" }}
{{- end }}
{{- end }}

{{/* orgsync.servesAPI is "true" for the services whose gRPC API or admin port needs auth. */}}
{{- define "orgsync.servesAPI" -}}
{{- if has .name (list "org-model" "entra-writer" "ad-writer") }}true{{ end }}
{{- end }}

{{- define "orgsync.securityEnv" -}}
{{- $v := .root.Values }}
{{- $credentials := $v.nats.credentials }}
{{- with include "orgsync.natsSecret" . }}
{{- $file := printf "/var/run/secrets/orgsync/nats/%s" $credentials.key }}
{{- if eq $credentials.type "creds" }}
- name: NATS_CREDS_FILE
  value: {{ $file | quote }}
{{- else if eq $credentials.type "nkey" }}
- name: NATS_NKEY_SEED_FILE
  value: {{ $file | quote }}
{{- else if eq $credentials.type "password" }}
- name: NATS_USER
  value: {{ $.name | quote }}
- name: NATS_PASSWORD_FILE
  value: {{ $file | quote }}
{{- end }}
{{- end }}
{{- if $v.nats.tls.ca.existingSecret }}
- name: NATS_CA_FILE
  value: /var/run/secrets/orgsync/nats-ca/{{ $v.nats.tls.ca.key }}
{{- end }}
{{- if $v.nats.tls.clientCertificate.existingSecret }}
- name: NATS_CERT_FILE
  value: /var/run/secrets/orgsync/nats-client/tls.crt
- name: NATS_KEY_FILE
  value: /var/run/secrets/orgsync/nats-client/tls.key
{{- end }}
{{- if include "orgsync.servesAPI" . }}
{{- if eq .name "entra-writer" "ad-writer" }}
- name: ADMIN_ADDR
  value: {{ printf ":%v" .values.adminPort | quote }}
{{- end }}
{{- with $v.auth.oidc.issuer }}
- name: ORGSYNC_AUTH_OIDC_ISSUER
  value: {{ . | quote }}
- name: ORGSYNC_AUTH_OIDC_AUDIENCE
  value: {{ $v.auth.oidc.audience | quote }}
- name: ORGSYNC_AUTH_OIDC_ROLES_CLAIM
  value: {{ $v.auth.oidc.rolesClaim | quote }}
{{- with $v.auth.oidc.roleMap }}
- name: ORGSYNC_AUTH_OIDC_ROLE_MAP
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if $v.auth.tokens.existingSecret }}
- name: ORGSYNC_AUTH_TOKENS_FILE
  value: /var/run/secrets/orgsync/auth/{{ $v.auth.tokens.key }}
{{- end }}
{{- if $v.grpcTLS.existingSecret }}
- name: GRPC_TLS_CERT_FILE
  value: /var/run/secrets/orgsync/grpc-tls/tls.crt
- name: GRPC_TLS_KEY_FILE
  value: /var/run/secrets/orgsync/grpc-tls/tls.key
{{- if $v.grpcTLS.clientCA.existingSecret }}
- name: GRPC_TLS_CLIENT_CA_FILE
  value: /var/run/secrets/orgsync/grpc-client-ca/{{ $v.grpcTLS.clientCA.key }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "orgsync.securityMounts" -}}
{{- $v := .root.Values }}
{{- if include "orgsync.natsSecret" . }}
- name: nats-credentials
  mountPath: /var/run/secrets/orgsync/nats
  readOnly: true
{{- end }}
{{- if $v.nats.tls.ca.existingSecret }}
- name: nats-ca
  mountPath: /var/run/secrets/orgsync/nats-ca
  readOnly: true
{{- end }}
{{- if $v.nats.tls.clientCertificate.existingSecret }}
- name: nats-client
  mountPath: /var/run/secrets/orgsync/nats-client
  readOnly: true
{{- end }}
{{- if include "orgsync.servesAPI" . }}
{{- if $v.auth.tokens.existingSecret }}
- name: auth-tokens
  mountPath: /var/run/secrets/orgsync/auth
  readOnly: true
{{- end }}
{{- if $v.grpcTLS.existingSecret }}
- name: grpc-tls
  mountPath: /var/run/secrets/orgsync/grpc-tls
  readOnly: true
{{- if $v.grpcTLS.clientCA.existingSecret }}
- name: grpc-client-ca
  mountPath: /var/run/secrets/orgsync/grpc-client-ca
  readOnly: true
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "orgsync.securityVolumes" -}}
{{- $v := .root.Values }}
{{- with include "orgsync.natsSecret" . }}
- name: nats-credentials
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: {{ $v.nats.credentials.key }}
        path: {{ $v.nats.credentials.key }}
{{- end }}
{{- with $v.nats.tls.ca.existingSecret }}
- name: nats-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: {{ $v.nats.tls.ca.key }}
        path: {{ $v.nats.tls.ca.key }}
{{- end }}
{{- with $v.nats.tls.clientCertificate.existingSecret }}
- name: nats-client
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- if include "orgsync.servesAPI" . }}
{{- with $v.auth.tokens.existingSecret }}
- name: auth-tokens
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: {{ $v.auth.tokens.key }}
        path: {{ $v.auth.tokens.key }}
{{- end }}
{{- with $v.grpcTLS.existingSecret }}
- name: grpc-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- if and $v.grpcTLS.existingSecret $v.grpcTLS.clientCA.existingSecret }}
- name: grpc-client-ca
  secret:
    secretName: {{ $v.grpcTLS.clientCA.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $v.grpcTLS.clientCA.key }}
        path: {{ $v.grpcTLS.clientCA.key }}
{{- end }}
{{- end }}
{{- end }}
