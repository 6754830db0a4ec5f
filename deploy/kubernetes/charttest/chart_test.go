package charttest

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// rendered is one helm template output, decoded and indexed.
type rendered struct {
	objects []object
	// deployments by app.kubernetes.io/component.
	deployments map[string]*appsv1.Deployment
	byID        map[string]any
}

func index(t *testing.T, objects []object) rendered {
	t.Helper()
	r := rendered{objects: objects, deployments: map[string]*appsv1.Deployment{}, byID: map[string]any{}}
	for _, o := range objects {
		if _, dup := r.byID[o.ID]; dup {
			t.Errorf("%s is rendered twice", o.ID)
		}
		r.byID[o.ID] = o.Obj
		if d, ok := o.Obj.(*appsv1.Deployment); ok {
			r.deployments[d.Spec.Template.Labels["app.kubernetes.io/component"]] = d
		}
	}
	return r
}

func objectsOf[T any](r rendered) []T {
	var out []T
	for _, o := range r.objects {
		if typed, ok := o.Obj.(T); ok {
			out = append(out, typed)
		}
	}
	return out
}

// exampleCase is one installation the chart must render: values files (relative to
// deploy/kubernetes, then --set flags), the workloads expected, and what must hold of it.
type exampleCase struct {
	name      string
	values    []string
	workloads []string
	check     func(t *testing.T, r rendered)
}

var exampleCases = []exampleCase{
	{
		name:      "local (Tilt)",
		values:    []string{"values-local.yaml"},
		workloads: []string{"entra-writer", "graph-emulator", "hr-ingest", "org-model"},
		check: func(t *testing.T, r rendered) {
			writer := env(t, r, "entra-writer")
			wantEnv(t, writer, "GRAPH_BASE_URL", "http://orgsync-graph-emulator:8080/v1.0")
			wantEnv(t, writer, "GRAPH_AUTH", "none")
			wantObject(t, r, "Service/orgsync-graph-emulator")
			ingest := env(t, r, "hr-ingest")
			wantEnv(t, ingest, "HR_SOURCES", "local")
			wantEnv(t, ingest, "HR_SOURCE_LOCAL_SECRET_FILE", "/var/run/secrets/orgsync/hr-sources/local")
			wantSecretVolume(t, r, "hr-ingest", "orgsync-hr-local")
			for component, d := range r.deployments {
				if image := d.Spec.Template.Spec.Containers[0].Image; image != "orgsync.local/"+component+":dev" {
					t.Errorf("%s image = %q, want the image Tilt builds, orgsync.local/%s:dev", component, image, component)
				}
			}
		},
	},
	{
		name:      "production with workload identity",
		values:    []string{"values-production.yaml"},
		workloads: []string{"ad-writer", "entra-writer", "hr-ingest", "org-model"},
		check: func(t *testing.T, r rendered) {
			for _, component := range []string{"ad-writer", "entra-writer", "hr-ingest", "org-model"} {
				vars := env(t, r, component)
				wantEnv(t, vars, "NATS_STREAM_REPLICAS", "3")
				wantEnv(t, vars, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.observability.svc.cluster.local:4318")
				wantObject(t, r, "NetworkPolicy/orgsync-"+component)
			}
			writer := r.deployments["entra-writer"]
			if got := writer.Spec.Template.Labels["azure.workload.identity/use"]; got != "true" {
				t.Errorf("entra-writer pod label azure.workload.identity/use = %q, want true", got)
			}
			sa := wantObject(t, r, "ServiceAccount/orgsync-entra-writer").(*corev1.ServiceAccount)
			if got := sa.Annotations["azure.workload.identity/client-id"]; got != "11111111-1111-1111-1111-111111111111" {
				t.Errorf("entra-writer ServiceAccount client-id annotation = %q", got)
			}
			vars := env(t, r, "entra-writer")
			if _, ok := vars["AZURE_CLIENT_SECRET"]; ok {
				t.Error("workload identity must not carry AZURE_CLIENT_SECRET")
			}
			wantEnv(t, vars, "GRAPH_AUTH", "azure")
			if ref := vars["REDIS_URL"].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "orgsync-redis" {
				t.Errorf("REDIS_URL = %+v, want it from Secret orgsync-redis", vars["REDIS_URL"])
			}
			wantObject(t, r, "HorizontalPodAutoscaler/orgsync-hr-ingest")
			// One writer replica holds the lease and writes; the second stands by.
			for _, component := range []string{"entra-writer", "ad-writer"} {
				if d := r.deployments[component]; d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
					t.Errorf("%s replicas = %v, want 2 (one active, one standby)", component, d.Spec.Replicas)
				}
				if _, ok := r.byID["HorizontalPodAutoscaler/orgsync-"+component]; ok {
					t.Errorf("%s is autoscaled: only the replica holding its lease writes", component)
				}
			}
			ingress := wantObject(t, r, "Ingress/orgsync-hr-ingest").(*networkingv1.Ingress)
			for _, rule := range ingress.Spec.Rules {
				for _, path := range rule.HTTP.Paths {
					if path.Path != "/v1/sources" {
						t.Errorf("ingress exposes %q; only the webhook path /v1/sources may be public", path.Path)
					}
				}
			}
			if d := r.deployments["org-model"]; d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
				t.Errorf("org-model must be one replica rolled out with Recreate, got %v replicas, %s", d.Spec.Replicas, d.Spec.Strategy.Type)
			}
		},
	},
	{
		name:      "production with the console",
		values:    []string{"values-production.yaml", "values-console.yaml"},
		workloads: []string{"ad-writer", "console", "entra-writer", "hr-ingest", "org-model"},
		check: func(t *testing.T, r rendered) {
			vars := env(t, r, "console")
			wantEnv(t, vars, "CONSOLE_ADDR", ":8081")
			wantEnv(t, vars, "HTTP_ADDR", ":8080")
			wantEnv(t, vars, "CONSOLE_PUBLIC_URL", "https://orgsync.example.com")
			wantEnv(t, vars, "CONSOLE_OIDC_CLIENT_ID", "22222222-2222-2222-2222-222222222222")
			wantEnv(t, vars, "CONSOLE_SESSION_KEY_FILE", "/var/run/secrets/orgsync/console-session/session-key")
			// People's tokens are checked against the issuer and audience org-model trusts.
			wantEnv(t, vars, "ORGSYNC_AUTH_OIDC_ISSUER", "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0")
			wantEnv(t, vars, "ORGSYNC_AUTH_OIDC_AUDIENCE", "api://orgsync-example")
			wantEnv(t, vars, "ORGMODEL_ADDR", "orgsync-org-model:9090")
			// org-model serves TLS here (grpcTLS): the console trusts the CA in its Secret.
			wantEnv(t, vars, "ORGMODEL_CA_FILE", "/var/run/secrets/orgsync/console-orgmodel-ca/ca.crt")
			wantEnv(t, vars, "HR_INGEST_URL", "http://orgsync-hr-ingest:8080")
			wantEnv(t, vars, "CONSOLE_PLAN_SOURCES", "entra-hr")
			wantEnv(t, vars, "CONSOLE_WRITERS", "ad-writer=http://orgsync-ad-writer:8183;metrics=http://orgsync-ad-writer:8080/metrics,"+
				"entra-writer=http://orgsync-entra-writer:8182;metrics=http://orgsync-entra-writer:8080/metrics")
			wantEnv(t, vars, "CONSOLE_TRACE_URL", "https://grafana.example.com/explore?traceId={traceId}")
			wantSecretVolume(t, r, "console", "orgsync-console-session")
			wantObject(t, r, "Service/orgsync-console")
			// The ingress exposes the pages (port web) only; health and metrics stay inside.
			ingress := wantObject(t, r, "Ingress/orgsync-console").(*networkingv1.Ingress)
			for _, rule := range ingress.Spec.Rules {
				for _, path := range rule.HTTP.Paths {
					if port := path.Backend.Service.Port.Name; port != "web" {
						t.Errorf("console ingress routes %s to port %q, want web", path.Path, port)
					}
				}
			}
			np := wantObject(t, r, "NetworkPolicy/orgsync-console").(*networkingv1.NetworkPolicy)
			if len(np.Spec.Ingress) == 0 || len(np.Spec.Ingress[0].From) != 1 || np.Spec.Ingress[0].From[0].NamespaceSelector == nil {
				t.Errorf("console NetworkPolicy ingress %+v: want the pages open only to the ingress controller's namespace", np.Spec.Ingress)
			}
		},
	},
	{
		name:      "Entra only with a client certificate",
		values:    []string{"values-entra-only.yaml"},
		workloads: []string{"entra-writer", "hr-ingest", "org-model"},
		check: func(t *testing.T, r rendered) {
			vars := env(t, r, "entra-writer")
			wantEnv(t, vars, "AZURE_CLIENT_CERTIFICATE_PATH", "/var/run/secrets/orgsync/azure/tls.pem")
			wantEnv(t, vars, "AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000000")
			wantSecretVolume(t, r, "entra-writer", "orgsync-entra-certificate")
		},
	},
	{
		name:      "AD only",
		values:    []string{"values-ad-only.yaml"},
		workloads: []string{"ad-writer", "hr-ingest", "org-model"},
		check: func(t *testing.T, r rendered) {
			vars := env(t, r, "ad-writer")
			wantEnv(t, vars, "LDAP_URL", "ldaps://dc1.corp.example.com:636")
			wantEnv(t, vars, "LDAP_BIND_PASSWORD_FILE", "/var/run/secrets/orgsync/ldap/password")
			wantEnv(t, vars, "LDAP_CA_FILE", "/etc/orgsync/ldap-ca/ca.crt")
			wantSecretVolume(t, r, "ad-writer", "orgsync-ldap")
			if _, ok := r.byID["ServiceAccount/orgsync-entra-writer"]; ok {
				t.Error("AD only renders entra-writer's ServiceAccount")
			}
		},
	},
	{
		name:      "every optional feature",
		values:    []string{"values-production.yaml", "charttest/testdata/all-features.yaml"},
		workloads: []string{"ad-writer", "console", "entra-writer", "graph-emulator", "hr-ingest", "org-model"},
		check: func(t *testing.T, r rendered) {
			// The console as a confidential client, reaching org-model's gRPC over TLS.
			console := env(t, r, "console")
			wantEnv(t, console, "CONSOLE_OIDC_CLIENT_SECRET_FILE", "/var/run/secrets/orgsync/console-oidc/client-secret")
			wantSecretVolume(t, r, "console", "orgsync-console-oidc")
			if got := len(objectsOf[*monitoringv1.ServiceMonitor](r)); got != 4 {
				t.Errorf("%d ServiceMonitors, want one per orgsync service (4)", got)
			}
			policy := wantObject(t, r, "ConfigMap/orgsync-policy").(*corev1.ConfigMap)
			if !strings.Contains(policy.Data["orgsync.yaml"], "timezone: Europe/Paris") {
				t.Errorf("policy ConfigMap = %q, want the policy from the values", policy.Data["orgsync.yaml"])
			}
			for _, component := range []string{"ad-writer", "entra-writer", "hr-ingest", "org-model"} {
				vars := env(t, r, component)
				wantEnv(t, vars, "ORGSYNC_CONFIG", "/etc/orgsync/policy/orgsync.yaml")
				if ref := vars["NATS_URL"].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "orgsync-nats" {
					t.Errorf("%s NATS_URL = %+v, want it from Secret orgsync-nats", component, vars["NATS_URL"])
				}
			}
			wantObject(t, r, "NetworkPolicy/orgsync-graph-emulator")
			ingress := wantObject(t, r, "Ingress/orgsync-hr-ingest").(*networkingv1.Ingress)
			for _, rule := range ingress.Spec.Rules {
				var paths []string
				for _, path := range rule.HTTP.Paths {
					paths = append(paths, path.Path)
				}
				if diff := cmp.Diff([]string{"/v1/sources", "/servicePrincipals"}, paths); diff != "" {
					t.Errorf("ingress paths for %s (-want +got):\n%s", rule.Host, diff)
				}
			}
		},
	},
	{
		name:      "sources and UPN domain from the policy file",
		values:    []string{"values-local.yaml", "charttest/testdata/policy-file.yaml"},
		workloads: []string{"entra-writer", "graph-emulator", "hr-ingest", "org-model"},
		check: func(t *testing.T, r rendered) {
			for variable, component := range map[string]string{"HR_SOURCES": "hr-ingest", "UPN_DOMAIN": "org-model"} {
				vars := env(t, r, component)
				if _, ok := vars[variable]; ok {
					t.Errorf("%s sets %s although the policy file gives it", component, variable)
				}
				wantEnv(t, vars, "ORGSYNC_CONFIG", "/etc/orgsync/policy/orgsync.yaml")
			}
			wantSecretVolume(t, r, "hr-ingest", "orgsync-hr-workday")
			mounts := r.deployments["hr-ingest"].Spec.Template.Spec.Containers[0].VolumeMounts
			if !slices.ContainsFunc(mounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/var/run/secrets/hr/workday" }) {
				t.Errorf("hr-ingest mounts %+v, want the policy's secret at /var/run/secrets/hr/workday", mounts)
			}
		},
	},
}

// TestExamplesCovered keeps the table above in step with deploy/kubernetes: an example values
// file nobody tests fails here.
func TestExamplesCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "values-*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tested []string
	for _, example := range exampleCases {
		tested = append(tested, example.values...)
	}
	if len(files) < 4 {
		t.Fatalf("found %d example values files in %s, want at least local, production, entra-only, ad-only", len(files), examplesDir)
	}
	for _, file := range files {
		if !slices.Contains(tested, filepath.Base(file)) {
			t.Errorf("%s has no case in exampleCases", filepath.Base(file))
		}
	}
}

// TestChart lints every example installation with --strict, renders it, decodes every manifest
// strictly into its API type and checks the security settings, resources and probes of every
// workload, the references between objects, and what the example is for.
func TestChart(t *testing.T) {
	for _, example := range exampleCases {
		t.Run(example.name, func(t *testing.T) {
			var args []string
			for _, file := range example.values {
				args = append(args, "--values", filepath.Join(examplesDir, file))
			}
			lintArgs := append([]string{"lint", "--strict", chartDir}, args...)
			if stdout, stderr, err := helm(t, lintArgs...); err != nil {
				t.Fatalf("helm lint --strict: %v\n%s%s", err, stdout, stderr)
			}

			objects, err := decodeManifests(render(t, args...))
			if err != nil {
				t.Fatal(err)
			}
			r := index(t, objects)
			var workloads []string
			for component := range r.deployments {
				workloads = append(workloads, component)
			}
			slices.Sort(workloads)
			if diff := cmp.Diff(example.workloads, workloads); diff != "" {
				t.Errorf("workloads (-want +got):\n%s", diff)
			}
			for component, d := range r.deployments {
				t.Run(component, func(t *testing.T) { checkWorkload(t, component, d) })
			}
			checkReferences(t, r)
			example.check(t, r)
		})
	}
}

// checkWorkload asserts what every orgsync workload must have: the restricted Pod Security
// Standard, requests and limits, and probes of the right kind.
func checkWorkload(t reporter, component string, d *appsv1.Deployment) {
	t.Helper()
	pod := d.Spec.Template.Spec
	podSC := pod.SecurityContext
	if podSC == nil {
		t.Fatalf("pod has no securityContext")
	}
	if !isTrue(podSC.RunAsNonRoot) {
		t.Errorf("pod securityContext.runAsNonRoot is not true")
	}
	if podSC.SeccompProfile == nil || podSC.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile = %+v, want RuntimeDefault", podSC.SeccompProfile)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("pod mounts a Kubernetes API token; orgsync never calls the API")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("pod shares a host namespace")
	}
	if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match the pod labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
	}
	containers := append(slices.Clone(pod.InitContainers), pod.Containers...)
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	for _, c := range containers {
		sc := c.SecurityContext
		if sc == nil {
			t.Fatalf("container %s has no securityContext", c.Name)
		}
		if !isTrue(sc.RunAsNonRoot) {
			t.Errorf("container %s runAsNonRoot is not true", c.Name)
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) {
			t.Errorf("container %s readOnlyRootFilesystem is not true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s allowPrivilegeEscalation is not false", c.Name)
		}
		if isTrue(sc.Privileged) {
			t.Errorf("container %s is privileged", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s capabilities = %+v, want drop ALL and add none", c.Name, sc.Capabilities)
		}
		if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("container %s seccompProfile = %+v, want RuntimeDefault", c.Name, sc.SeccompProfile)
		}
		for _, resource := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			request, hasRequest := c.Resources.Requests[resource]
			limit, hasLimit := c.Resources.Limits[resource]
			if !hasRequest || !hasLimit || request.IsZero() || limit.IsZero() {
				t.Errorf("container %s %s: request %v, limit %v; want both set", c.Name, resource, request.String(), limit.String())
			} else if request.Cmp(limit) > 0 {
				t.Errorf("container %s %s request %s is above its limit %s", c.Name, resource, request.String(), limit.String())
			}
		}
		if !strings.Contains(c.Image, "/"+component) {
			t.Errorf("container %s image %q is not %s's", c.Name, c.Image, component)
		}
		seen := map[string]bool{}
		for _, e := range c.Env {
			if seen[e.Name] {
				t.Errorf("container %s sets %s twice", c.Name, e.Name)
			}
			seen[e.Name] = true
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("container %s mounts volume %q, which the pod does not have", c.Name, m.Name)
			}
			if m.MountPath != "/tmp" && !m.ReadOnly {
				t.Errorf("container %s mounts %s writable; only /tmp may be", c.Name, m.MountPath)
			}
		}
	}
	checkProbes(t, component, pod.Containers[0])
}

// checkProbes: readiness is gRPC health for the service's own name (HTTP /readyz for hr-ingest,
// whose traffic is HTTP); liveness is HTTP /healthz, which never depends on NATS or the directory,
// so that a dependency outage makes pods unready instead of restarting all of them.
func checkProbes(t reporter, component string, c corev1.Container) {
	t.Helper()
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	httpPort := func(probe string, action *corev1.HTTPGetAction) {
		if action.Port.String() != "http" || ports["http"] == 0 {
			t.Errorf("%s probe port %s is not the container's http port", probe, action.Port.String())
		}
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Fatalf("liveness %v / readiness %v: both probes are required", c.LivenessProbe, c.ReadinessProbe)
	}
	if component == "graph-emulator" {
		for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			if probe.HTTPGet == nil {
				t.Errorf("%s probe is not HTTP", name)
				continue
			}
			httpPort(name, probe.HTTPGet)
		}
		return
	}
	if c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness = %+v, want HTTP GET /healthz", c.LivenessProbe.ProbeHandler)
	} else {
		httpPort("liveness", c.LivenessProbe.HTTPGet)
	}
	if c.StartupProbe == nil || c.StartupProbe.HTTPGet == nil || c.StartupProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("startup probe = %+v, want HTTP GET /healthz (time to reach JetStream)", c.StartupProbe)
	}
	readiness := c.ReadinessProbe
	if component == "hr-ingest" || readiness.HTTPGet != nil {
		// hr-ingest, and every service whose gRPC speaks TLS (the kubelet's gRPC probe cannot),
		// is ready when /readyz says so.
		if readiness.HTTPGet == nil || readiness.HTTPGet.Path != "/readyz" {
			t.Errorf("readiness = %+v, want HTTP GET /readyz on the http port", readiness.ProbeHandler)
		} else {
			httpPort("readiness", readiness.HTTPGet)
		}
		return
	}
	if readiness.GRPC == nil {
		t.Fatalf("readiness = %+v, want a native gRPC probe", readiness.ProbeHandler)
	}
	if readiness.GRPC.Service == nil || *readiness.GRPC.Service != component {
		t.Errorf("gRPC readiness service = %v, want the service's own name %q", readiness.GRPC.Service, component)
	}
	if readiness.GRPC.Port != ports["grpc"] || ports["grpc"] == 0 {
		t.Errorf("gRPC readiness port %d is not the container's grpc port %d", readiness.GRPC.Port, ports["grpc"])
	}
}

// checkReferences follows every reference between rendered objects: Services, budgets, policies
// and monitors select a workload; autoscalers target one that leaves replicas to them; named
// ports and ServiceAccounts exist.
func checkReferences(t *testing.T, r rendered) {
	t.Helper()
	selects := func(what string, selector map[string]string) *appsv1.Deployment {
		var found *appsv1.Deployment
		for _, d := range r.deployments {
			if labels.SelectorFromSet(selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				if found != nil {
					t.Errorf("%s selects both %s and %s", what, found.Name, d.Name)
				}
				found = d
			}
		}
		if found == nil {
			t.Errorf("%s selects no workload (%v)", what, selector)
		}
		return found
	}
	for _, d := range r.deployments {
		if name := d.Spec.Template.Spec.ServiceAccountName; name != "" && name != "default" {
			wantObject(t, r, "ServiceAccount/"+name)
		}
	}
	for _, s := range objectsOf[*corev1.Service](r) {
		d := selects("Service "+s.Name, s.Spec.Selector)
		if d == nil {
			continue
		}
		for _, p := range s.Spec.Ports {
			if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.String() }) {
				t.Errorf("Service %s port %s targets %s, which %s does not expose", s.Name, p.Name, p.TargetPort.String(), d.Name)
			}
		}
	}
	for _, pdb := range objectsOf[*policyv1.PodDisruptionBudget](r) {
		selects("PodDisruptionBudget "+pdb.Name, pdb.Spec.Selector.MatchLabels)
		if pdb.Spec.MinAvailable != nil {
			t.Errorf("PodDisruptionBudget %s uses minAvailable, which blocks drains of one-replica services", pdb.Name)
		}
	}
	for _, np := range objectsOf[*networkingv1.NetworkPolicy](r) {
		if np.Namespace != "" {
			// A policy with a namespace of its own protects a dependency's pods (NATS, Redis);
			// checkDependencyPolicy looks at it.
			continue
		}
		selects("NetworkPolicy "+np.Name, np.Spec.PodSelector.MatchLabels)
		// A peer selecting pods in the policy's own namespace must select some of the release's
		// pods, or the rule silently allows nothing.
		var peers []networkingv1.NetworkPolicyPeer
		for _, rule := range np.Spec.Ingress {
			peers = append(peers, rule.From...)
		}
		for _, rule := range np.Spec.Egress {
			peers = append(peers, rule.To...)
		}
		for _, peer := range peers {
			if peer.PodSelector == nil || peer.NamespaceSelector != nil {
				continue
			}
			selector, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
			if err != nil {
				t.Errorf("NetworkPolicy %s: %v", np.Name, err)
				continue
			}
			if !slices.ContainsFunc(slices.Collect(maps.Values(r.deployments)), func(d *appsv1.Deployment) bool {
				return selector.Matches(labels.Set(d.Spec.Template.Labels))
			}) {
				t.Errorf("NetworkPolicy %s has a peer %v that selects none of the release's pods", np.Name, peer.PodSelector.MatchLabels)
			}
		}
	}
	for _, hpa := range objectsOf[*autoscalingv2.HorizontalPodAutoscaler](r) {
		target, ok := r.byID["Deployment/"+hpa.Spec.ScaleTargetRef.Name].(*appsv1.Deployment)
		if !ok || hpa.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HorizontalPodAutoscaler %s targets %s/%s, which is not rendered", hpa.Name, hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name)
			continue
		}
		if target.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas although %s scales it: every upgrade would reset the scale", target.Name, hpa.Name)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
			t.Errorf("HorizontalPodAutoscaler %s min %v > max %d", hpa.Name, hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
		}
	}
	for _, ingress := range objectsOf[*networkingv1.Ingress](r) {
		for _, rule := range ingress.Spec.Rules {
			for _, path := range rule.HTTP.Paths {
				service, ok := r.byID["Service/"+path.Backend.Service.Name].(*corev1.Service)
				if !ok {
					t.Errorf("Ingress %s routes to Service %s, which is not rendered", ingress.Name, path.Backend.Service.Name)
					continue
				}
				if !slices.ContainsFunc(service.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == path.Backend.Service.Port.Name }) {
					t.Errorf("Ingress %s routes to port %q, which Service %s lacks", ingress.Name, path.Backend.Service.Port.Name, service.Name)
				}
			}
		}
	}
	for _, monitor := range objectsOf[*monitoringv1.ServiceMonitor](r) {
		matched := 0
		for _, s := range objectsOf[*corev1.Service](r) {
			if labels.SelectorFromSet(monitor.Spec.Selector.MatchLabels).Matches(labels.Set(s.Labels)) {
				matched++
			}
		}
		if matched != 1 {
			t.Errorf("ServiceMonitor %s selects %d Services, want 1", monitor.Name, matched)
		}
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func wantObject(t *testing.T, r rendered, id string) any {
	t.Helper()
	obj, ok := r.byID[id]
	if !ok {
		t.Fatalf("%s is not rendered", id)
	}
	return obj
}

// env is the environment of a workload's container, by name.
func env(t *testing.T, r rendered, component string) map[string]corev1.EnvVar {
	t.Helper()
	d, ok := r.deployments[component]
	if !ok {
		t.Fatalf("%s is not rendered", component)
	}
	vars := map[string]corev1.EnvVar{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		vars[e.Name] = e
	}
	return vars
}

func wantEnv(t *testing.T, vars map[string]corev1.EnvVar, name, want string) {
	t.Helper()
	if got, ok := vars[name]; !ok || got.Value != want {
		t.Errorf("%s = %q (set: %t), want %q", name, got.Value, ok, want)
	}
}

// wantSecretVolume asserts the workload mounts the named Secret (directly or projected), so the
// secret reaches the service as a file, never as a value in the chart.
func wantSecretVolume(t *testing.T, r rendered, component, secret string) {
	t.Helper()
	for _, v := range r.deployments[component].Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			return
		}
		if v.Projected != nil {
			for _, source := range v.Projected.Sources {
				if source.Secret != nil && source.Secret.Name == secret {
					return
				}
			}
		}
	}
	t.Errorf("%s does not mount Secret %s", component, secret)
}

// TestFirstDayCredentialChannel: entraWriter.firstDayCredential reaches entra-writer as the
// ENTRA_FIRST_DAY_* variables, the webhook's signing secret from its Secret and never as a
// value; without it, none is set.
func TestFirstDayCredentialChannel(t *testing.T) {
	production := filepath.Join(examplesDir, "values-production.yaml")
	vars := env(t, renderObjects(t, "--values", production), "entra-writer")
	for name := range vars {
		if strings.HasPrefix(name, "ENTRA_FIRST_DAY_") {
			t.Errorf("%s set without entraWriter.firstDayCredential", name)
		}
	}

	vars = env(t, renderObjects(t, "--values", production, "--set", "entraWriter.firstDayCredential.mailSender=onboarding@corp.example.com"), "entra-writer")
	wantEnv(t, vars, "ENTRA_FIRST_DAY_MAIL_SENDER", "onboarding@corp.example.com")

	vars = env(t, renderObjects(t, "--values", production,
		"--set", "entraWriter.firstDayCredential.webhook.url=https://tickets.example.com/hooks/orgsync",
		"--set", "entraWriter.firstDayCredential.webhook.name=servicedesk",
		"--set", "entraWriter.firstDayCredential.webhook.secret.existingSecret=orgsync-first-day"), "entra-writer")
	wantEnv(t, vars, "ENTRA_FIRST_DAY_WEBHOOK_URL", "https://tickets.example.com/hooks/orgsync")
	wantEnv(t, vars, "ENTRA_FIRST_DAY_WEBHOOK_NAME", "servicedesk")
	secret := vars["ENTRA_FIRST_DAY_WEBHOOK_SECRET"]
	if secret.Value != "" || secret.ValueFrom == nil || secret.ValueFrom.SecretKeyRef == nil ||
		secret.ValueFrom.SecretKeyRef.Name != "orgsync-first-day" || secret.ValueFrom.SecretKeyRef.Key != "webhook-secret" {
		t.Errorf("ENTRA_FIRST_DAY_WEBHOOK_SECRET = %+v, want key webhook-secret of Secret orgsync-first-day", secret)
	}
}
