package charttest

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestValuesRejected shows that helm refuses values the schema or the chart's own validation
// rejects, before anything is rendered, with a message naming the value at fault.
func TestValuesRejected(t *testing.T) {
	const schemaFailure = "values don't meet the specifications of the schema"
	tests := []struct {
		name   string
		values string
		set    []string
		want   []string
	}{
		{
			name:   "wrong type: string for an integer",
			values: "values-local.yaml",
			set:    []string{"--set", "hrIngest.replicaCount=two"},
			want:   []string{schemaFailure, "/hrIngest/replicaCount", "want integer"},
		},
		{
			name:   "wrong type: string for a boolean",
			values: "values-production.yaml",
			set:    []string{"--set-string", "entraWriter.azure.workloadIdentity=yes"},
			want:   []string{schemaFailure, "/entraWriter/azure/workloadIdentity", "want boolean"},
		},
		{
			name:   "unknown top-level key",
			values: "values-local.yaml",
			set:    []string{"--set", "replicas=3"},
			want:   []string{schemaFailure, "additional properties 'replicas' not allowed"},
		},
		{
			name:   "misspelled nested key",
			values: "values-local.yaml",
			set:    []string{"--set", "hrIngest.autoscaling.maxReplica=4"},
			want:   []string{schemaFailure, "/hrIngest/autoscaling", "'maxReplica'"},
		},
		{
			name:   "value outside its enum",
			values: "values-local.yaml",
			set:    []string{"--set", "logLevel=verbose"},
			want:   []string{schemaFailure, "/logLevel"},
		},
		{
			name:   "stream replicas above a NATS cluster's size",
			values: "values-local.yaml",
			set:    []string{"--set", "nats.streamReplicas=7"},
			want:   []string{schemaFailure, "/nats/streamReplicas"},
		},
		{
			name:   "HR source name unusable in a variable name",
			values: "values-local.yaml",
			set:    []string{"--set", "hrIngest.sources[0].name=Work Day"},
			want:   []string{schemaFailure, "/hrIngest/sources/0/name"},
		},
		{
			name:   "unknown NATS credential type",
			values: "values-production.yaml",
			set:    []string{"--set", "nats.credentials.type=token"},
			want:   []string{schemaFailure, "/nats/credentials/type"},
		},
		{
			name:   "admin namespace that is not a namespace name",
			values: "values-production.yaml",
			set:    []string{"--set", "networkPolicy.adminNamespaces[0]=IAM Ops"},
			want:   []string{schemaFailure, "/networkPolicy/adminNamespaces/0"},
		},
		{
			name:   "OIDC issuer without https",
			values: "values-production.yaml",
			set:    []string{"--set", "auth.oidc.issuer=http://issuer.example.com"},
			want:   []string{schemaFailure, "/auth/oidc/issuer"},
		},
		{
			name:   "role map naming an unknown role",
			values: "values-production.yaml",
			set:    []string{"--set", "auth.oidc.roleMap=admins=root"},
			want:   []string{schemaFailure, "/auth/oidc/roleMap"},
		},
		{
			name:   "writer admin port out of range",
			values: "values-production.yaml",
			set:    []string{"--set", "entraWriter.adminPort=70000"},
			want:   []string{schemaFailure, "/entraWriter/adminPort"},
		},
		{
			name:   "misspelled protectNats key",
			values: "values-production.yaml",
			set:    []string{"--set", "networkPolicy.protectNats.port=4222"},
			want:   []string{schemaFailure, "/networkPolicy/protectNats", "'port'"},
		},
		{
			name:   "OIDC issuer without an audience",
			values: "values-production.yaml",
			set:    []string{"--set", "auth.oidc.audience="},
			want:   []string{"auth.oidc.audience is required with auth.oidc.issuer"},
		},
		{
			name:   "NATS credentials without a service's Secret",
			values: "values-production.yaml",
			set:    []string{"--set", "nats.credentials.secrets.orgModel="},
			want:   []string{"nats.credentials.secrets.orgModel is required with nats.credentials.type=nkey"},
		},
		{
			name:   "gRPC client CA without gRPC TLS",
			values: "values-production.yaml",
			set:    []string{"--set", "grpcTLS.existingSecret=", "--set", "grpcTLS.clientCA.existingSecret=orgsync-clients-ca"},
			want:   []string{"grpcTLS.clientCA needs grpcTLS.existingSecret"},
		},
		{
			name:   "missing UPN domain",
			values: "values-local.yaml",
			set:    []string{"--set", "orgModel.upnDomain="},
			want:   []string{"orgModel.upnDomain is required"},
		},
		{
			name:   "two Azure credentials",
			values: "values-production.yaml",
			set:    []string{"--set", "entraWriter.azure.clientSecret.existingSecret=orgsync-entra"},
			want:   []string{"entraWriter.azure: choose one credential"},
		},
		{
			name:   "no Azure credential against Graph",
			values: "values-production.yaml",
			set:    []string{"--set", "entraWriter.azure.workloadIdentity=false"},
			want:   []string{"entraWriter.azure needs a credential"},
		},
		{
			name:   "several writers without a shared budget",
			values: "values-entra-only.yaml",
			set:    []string{"--set", "redis.existingSecret="},
			want:   []string{"entraWriter: more than one replica needs redis.url or redis.existingSecret"},
		},
		{
			name:   "an autoscaled writer",
			values: "values-production.yaml",
			set:    []string{"--set", "entraWriter.autoscaling.enabled=true"},
			want:   []string{"entraWriter.autoscaling: only the replica holding the writer's lease writes"},
		},
		{
			name:   "ad-writer without a bind password",
			values: "values-ad-only.yaml",
			set:    []string{"--set", "adWriter.ldap.bindPassword.existingSecret="},
			want:   []string{"adWriter.ldap.bindPassword.existingSecret is required"},
		},
		{
			name:   "ingress without hosts",
			values: "values-local.yaml",
			set:    []string{"--set", "hrIngest.ingress.enabled=true"},
			want:   []string{"hrIngest.ingress.hosts needs at least one host"},
		},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			args := append([]string{"template", "orgsync", chartDir, "--values", filepath.Join(examplesDir, test.values)}, test.set...)
			stdout, stderr, err := helm(t, args...)
			if err == nil {
				t.Fatalf("helm %s rendered; want it refused:\n%s", strings.Join(args, " "), stdout)
			}
			for _, want := range test.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("helm's error does not contain %q:\n%s", want, stderr)
				}
			}
		})
	}
}
