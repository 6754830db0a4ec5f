package charttest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// minimalValues is the least a user sets: no networkPolicy, auth or NATS value at all, so what
// renders is the chart's default.
var minimalValues = []string{
	"--set", "orgModel.upnDomain=corp.example.com",
	"--set", "hrIngest.sources[0].name=workday", "--set", "hrIngest.sources[0].existingSecret=orgsync-hr-workday",
	"--set", "entraWriter.azure.workloadIdentity=true", "--set", "entraWriter.azure.clientId=11111111-1111-1111-1111-111111111111",
	"--set", "adWriter.enabled=true", "--set", "adWriter.ldap.url=ldaps://dc1.corp.example.com:636",
	"--set", "adWriter.ldap.bindDN=CN=svc-orgsync\\,DC=corp\\,DC=example\\,DC=com",
	"--set", "adWriter.ldap.bindPassword.existingSecret=orgsync-ldap",
}

func renderObjects(t *testing.T, args ...string) rendered {
	t.Helper()
	objects, err := decodeManifests(render(t, args...))
	if err != nil {
		t.Fatal(err)
	}
	return index(t, objects)
}

// componentPolicies returns the services' NetworkPolicies by component.
func componentPolicies(r rendered) map[string]*networkingv1.NetworkPolicy {
	out := map[string]*networkingv1.NetworkPolicy{}
	for _, np := range objectsOf[*networkingv1.NetworkPolicy](r) {
		if component := np.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"]; component != "" && np.Namespace == "" {
			out[component] = np
		}
	}
	return out
}

// describePeer says in words whom a peer selects, so rules compare as text.
func describePeer(peer networkingv1.NetworkPolicyPeer) string {
	var parts []string
	if peer.IPBlock != nil {
		parts = append(parts, "cidr "+peer.IPBlock.CIDR)
	}
	if ns := peer.NamespaceSelector; ns != nil {
		if name := ns.MatchLabels["kubernetes.io/metadata.name"]; name != "" {
			parts = append(parts, "namespace "+name)
		} else {
			parts = append(parts, fmt.Sprintf("namespaces %v", ns.MatchLabels))
		}
	}
	if pods := peer.PodSelector; pods != nil {
		labels := pods.MatchLabels
		switch {
		case labels["app.kubernetes.io/instance"] == "orgsync" && labels["app.kubernetes.io/component"] == "":
			parts = append(parts, "release pods")
		default:
			parts = append(parts, fmt.Sprintf("pods %v", labels))
		}
	}
	return strings.Join(parts, " ")
}

// describeRules flattens rules into "PORT/PROTOCOL from|to PEER" lines, sorted.
func describeRules(direction string, ports [][]networkingv1.NetworkPolicyPort, peers [][]networkingv1.NetworkPolicyPeer) []string {
	var lines []string
	for i := range ports {
		portNames := []string{"all ports"}
		if len(ports[i]) > 0 {
			portNames = nil
			for _, p := range ports[i] {
				protocol := "TCP"
				if p.Protocol != nil {
					protocol = string(*p.Protocol)
				}
				portNames = append(portNames, p.Port.String()+"/"+protocol)
			}
		}
		peerNames := []string{"anywhere"}
		if len(peers[i]) > 0 {
			peerNames = nil
			for _, peer := range peers[i] {
				peerNames = append(peerNames, describePeer(peer))
			}
		}
		for _, port := range portNames {
			for _, peer := range peerNames {
				lines = append(lines, port+" "+direction+" "+peer)
			}
		}
	}
	slices.Sort(lines)
	return lines
}

func ingressOf(np *networkingv1.NetworkPolicy) []string {
	var ports [][]networkingv1.NetworkPolicyPort
	var peers [][]networkingv1.NetworkPolicyPeer
	for _, rule := range np.Spec.Ingress {
		ports, peers = append(ports, rule.Ports), append(peers, rule.From)
	}
	return describeRules("from", ports, peers)
}

func egressOf(np *networkingv1.NetworkPolicy) []string {
	var ports [][]networkingv1.NetworkPolicyPort
	var peers [][]networkingv1.NetworkPolicyPeer
	for _, rule := range np.Spec.Egress {
		ports, peers = append(ports, rule.Ports), append(peers, rule.To)
	}
	return describeRules("to", ports, peers)
}

func sorted(lines ...string) []string {
	slices.Sort(lines)
	return lines
}

var (
	dns       = []string{"53/TCP to anywhere", "53/UDP to anywhere"}
	natsOTLP  = []string{"4222/TCP to anywhere", "4317/TCP to anywhere", "4318/TCP to anywhere"}
	fromPeers = "all ports from release pods"
)

// TestNetworkPolicyByDefault decodes the policies the chart renders without any networkPolicy
// value: only hr-ingest's webhook port is open beyond the release's own pods, and each service
// reaches only what it needs.
func TestNetworkPolicyByDefault(t *testing.T) {
	policies := componentPolicies(renderObjects(t, minimalValues...))
	base := append(slices.Clone(dns), natsOTLP...)
	want := map[string]struct{ ingress, egress []string }{
		"hr-ingest": {
			ingress: sorted(fromPeers, "http/TCP from anywhere"),
			egress:  sorted(append(slices.Clone(base), "6379/TCP to anywhere", "443/TCP to anywhere")...),
		},
		"org-model": {
			ingress: []string{fromPeers},
			egress:  sorted(base...),
		},
		"entra-writer": {
			ingress: []string{fromPeers},
			egress:  sorted(append(slices.Clone(base), "6379/TCP to anywhere", "443/TCP to anywhere")...),
		},
		"ad-writer": {
			ingress: []string{fromPeers},
			egress:  sorted(append(slices.Clone(base), "636/TCP to anywhere")...),
		},
	}
	if len(policies) != len(want) {
		t.Errorf("NetworkPolicies for %v, want one per service", slices.Sorted(func(yield func(string) bool) {
			for component := range policies {
				if !yield(component) {
					return
				}
			}
		}))
	}
	for component, w := range want {
		np, ok := policies[component]
		if !ok {
			t.Errorf("no NetworkPolicy for %s", component)
			continue
		}
		if diff := cmp.Diff([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, np.Spec.PolicyTypes); diff != "" {
			t.Errorf("%s policy types (-want +got):\n%s", component, diff)
		}
		if diff := cmp.Diff(w.ingress, ingressOf(np)); diff != "" {
			t.Errorf("%s ingress (-want +got):\n%s", component, diff)
		}
		if diff := cmp.Diff(w.egress, egressOf(np)); diff != "" {
			t.Errorf("%s egress (-want +got):\n%s", component, diff)
		}
	}
}

// TestNetworkPolicyAdminAndMonitoring opens the admin ports to the listed namespaces only, the
// HTTP port to monitoring, and protects NATS and Redis, which are other releases.
func TestNetworkPolicyAdminAndMonitoring(t *testing.T) {
	r := renderObjects(t, append(slices.Clone(minimalValues),
		"--set", "networkPolicy.adminNamespaces[0]=iam-operations",
		"--set", "networkPolicy.monitoringNamespaces[0]=monitoring",
		"--set", "networkPolicy.webhookFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=ingress-nginx",
		"--set", "networkPolicy.protectNats.enabled=true", "--set", "networkPolicy.protectNats.namespace=nats",
		"--set", "networkPolicy.protectRedis.enabled=true",
		"--set", "auth.oidc.issuer=https://issuer.example.com", "--set", "auth.oidc.audience=orgsync",
	)...)
	policies := componentPolicies(r)
	monitoring := "http/TCP from namespace monitoring"
	want := map[string][]string{
		"hr-ingest":    sorted(fromPeers, "http/TCP from namespace ingress-nginx", monitoring),
		"org-model":    sorted(fromPeers, "grpc/TCP from namespace iam-operations", monitoring),
		"entra-writer": sorted(fromPeers, "admin/TCP from namespace iam-operations", monitoring),
		"ad-writer":    sorted(fromPeers, "admin/TCP from namespace iam-operations", monitoring),
	}
	for component, w := range want {
		if diff := cmp.Diff(w, ingressOf(policies[component])); diff != "" {
			t.Errorf("%s ingress (-want +got):\n%s", component, diff)
		}
		// Verifying OIDC tokens needs the issuer's JWKS.
		if component != "hr-ingest" && !slices.Contains(egressOf(policies[component]), "443/TCP to anywhere") {
			t.Errorf("%s egress %v has no HTTPS for the OIDC issuer", component, egressOf(policies[component]))
		}
	}
	for _, d := range r.deployments {
		for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
			if p.Name == "admin" && !strings.HasSuffix(d.Name, "-writer") {
				t.Errorf("%s has an admin port", d.Name)
			}
		}
	}

	for _, dependency := range []struct{ id, namespace, port string }{
		{"NetworkPolicy/orgsync-nats-clients", "nats", "4222"},
		{"NetworkPolicy/orgsync-redis-clients", "orgsync", "6379"},
	} {
		np := wantObject(t, r, dependency.id).(*networkingv1.NetworkPolicy)
		if np.Namespace != dependency.namespace {
			t.Errorf("%s in namespace %q, want %q", dependency.id, np.Namespace, dependency.namespace)
		}
		if diff := cmp.Diff([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, np.Spec.PolicyTypes); diff != "" {
			t.Errorf("%s policy types (-want +got):\n%s", dependency.id, diff)
		}
		self := fmt.Sprintf("all ports from pods %v", np.Spec.PodSelector.MatchLabels)
		wantIngress := sorted(dependency.port+"/TCP from namespace orgsync release pods", self)
		if diff := cmp.Diff(wantIngress, ingressOf(np)); diff != "" {
			t.Errorf("%s ingress (-want +got):\n%s", dependency.id, diff)
		}
	}
}

// TestProductionValuesTurnAuthOn renders values-production.yaml: every API-serving service gets
// the OIDC and token settings, each service its own NATS credential from its own Secret, and the
// writers their admin port.
func TestProductionValuesTurnAuthOn(t *testing.T) {
	r := renderObjects(t, "--values", examplesDir+"/values-production.yaml")
	for _, component := range []string{"hr-ingest", "org-model", "entra-writer", "ad-writer"} {
		vars := env(t, r, component)
		wantEnv(t, vars, "NATS_NKEY_SEED_FILE", "/var/run/secrets/orgsync/nats/seed.nk")
		wantEnv(t, vars, "NATS_CA_FILE", "/var/run/secrets/orgsync/nats-ca/ca.crt")
		wantSecretVolume(t, r, component, "orgsync-nats-"+component)
		for _, name := range []string{"NATS_PASSWORD_FILE", "NATS_CREDS_FILE", "NATS_USER"} {
			if _, ok := vars[name]; ok {
				t.Errorf("%s sets %s besides NATS_NKEY_SEED_FILE", component, name)
			}
		}
		apiVars := []string{"ORGSYNC_AUTH_OIDC_ISSUER", "ORGSYNC_AUTH_OIDC_AUDIENCE", "ORGSYNC_AUTH_OIDC_ROLES_CLAIM",
			"ORGSYNC_AUTH_OIDC_ROLE_MAP", "ORGSYNC_AUTH_TOKENS_FILE", "GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE"}
		if component == "hr-ingest" {
			for _, name := range apiVars {
				if _, ok := vars[name]; ok {
					t.Errorf("hr-ingest sets %s; its webhooks are authenticated by signature", name)
				}
			}
			continue
		}
		wantEnv(t, vars, "ORGSYNC_AUTH_OIDC_ISSUER", "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0")
		wantEnv(t, vars, "ORGSYNC_AUTH_OIDC_AUDIENCE", "api://orgsync-example")
		wantEnv(t, vars, "ORGSYNC_AUTH_OIDC_ROLES_CLAIM", "groups")
		wantEnv(t, vars, "ORGSYNC_AUTH_TOKENS_FILE", "/var/run/secrets/orgsync/auth/tokens.yaml")
		wantEnv(t, vars, "GRPC_TLS_CERT_FILE", "/var/run/secrets/orgsync/grpc-tls/tls.crt")
		wantSecretVolume(t, r, component, "orgsync-api-tokens")
		wantSecretVolume(t, r, component, "orgsync-grpc-tls")
		if readiness := r.deployments[component].Spec.Template.Spec.Containers[0].ReadinessProbe; readiness.HTTPGet == nil {
			t.Errorf("%s readiness %+v: with gRPC TLS it must be HTTP /readyz", component, readiness.ProbeHandler)
		}
	}
	for component, port := range map[string]string{"entra-writer": ":8182", "ad-writer": ":8183"} {
		wantEnv(t, env(t, r, component), "ADMIN_ADDR", port)
		service := wantObject(t, r, "Service/orgsync-"+component).(*corev1.Service)
		if !slices.ContainsFunc(service.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "admin" }) {
			t.Errorf("Service orgsync-%s has no admin port: %+v", component, service.Spec.Ports)
		}
	}
	if _, ok := env(t, r, "org-model")["ADMIN_ADDR"]; ok {
		t.Error("org-model sets ADMIN_ADDR; its admin API is its gRPC port")
	}
	wantObject(t, r, "NetworkPolicy/orgsync-nats-clients")
}

// TestNATSChartValuesCarryTheExampleAccounts keeps the NATS chart's production values and the
// example nats-server configuration (which the pipeline's permission tests load) the same.
func TestNATSChartValuesCarryTheExampleAccounts(t *testing.T) {
	accounts, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "nats", "orgsync-accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(examplesDir, "nats", "values-production.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config struct {
			Merge map[string]string `json:"merge"`
		} `json:"config"`
		ConfigMap struct {
			Merge struct {
				Data map[string]string `json:"data"`
			} `json:"merge"`
		} `json:"configMap"`
		Container struct {
			Env map[string]string `json:"env"`
		} `json:"container"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(accounts), values.ConfigMap.Merge.Data["orgsync-accounts.conf"]); diff != "" {
		t.Errorf("deploy/kubernetes/nats/values-production.yaml's orgsync-accounts.conf differs from deploy/nats/orgsync-accounts.conf (-file +values):\n%s", diff)
	}
	if got := values.Config.Merge["00$include"]; got != "orgsync-accounts.conf" {
		t.Errorf("config.merge includes %q, want orgsync-accounts.conf", got)
	}
	for _, variable := range []string{"ORGSYNC_NKEY_HR_INGEST", "ORGSYNC_NKEY_ORG_MODEL", "ORGSYNC_NKEY_ENTRA_WRITER", "ORGSYNC_NKEY_AD_WRITER"} {
		if !strings.Contains(string(accounts), "$"+variable) {
			t.Errorf("orgsync-accounts.conf does not use $%s", variable)
		}
		if key := values.Container.Env[variable]; !strings.HasPrefix(key, "U") || len(key) != 56 {
			t.Errorf("container.env.%s = %q, want a user's public nkey", variable, key)
		}
	}
}
