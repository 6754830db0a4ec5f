package charttest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// kinds are the API types the chart may render, by apiVersion and kind. Anything else is a
// mistake (a typo in apiVersion, a removed API version, a kind nobody reviewed) and fails.
var kinds = map[string]func() any{
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":            func() any { return &networkingv1.Ingress{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
}

// object is one decoded manifest.
type object struct {
	// ID is "Kind/name", for messages.
	ID  string
	Obj any
}

// decodeManifests splits a multi-document YAML stream and decodes every document strictly into
// its API type: an unknown or misspelled field, a duplicate field, a value of the wrong type or an
// unparsable quantity is an error naming the document.
func decodeManifests(stream string) ([]object, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var objects []object
	for index := 0; ; index++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", index, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("document %d: %w", index, err)
		}
		newObject := kinds[meta.APIVersion+"/"+meta.Kind]
		if newObject == nil {
			return nil, fmt.Errorf("document %d: unexpected kind %s %s:\n%s", index, meta.APIVersion, meta.Kind, doc)
		}
		obj := newObject()
		// YAMLToJSONStrict refuses duplicate keys; kjson.UnmarshalStrict then decodes the way the
		// API server does (case-sensitive field names) and reports every unknown field by path.
		jsonDoc, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %w\n%s", index, meta.Kind, err, doc)
		}
		strictErrs, err := kjson.UnmarshalStrict(jsonDoc, obj)
		if err = errors.Join(append(strictErrs, err)...); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w\n%s", index, meta.Kind, err, doc)
		}
		name := obj.(metav1.Object).GetName()
		if name == "" {
			return nil, fmt.Errorf("document %d (%s) has no name", index, meta.Kind)
		}
		objects = append(objects, object{ID: meta.Kind + "/" + name, Obj: obj})
	}
}

// stripComments drops comment lines and document separators, to tell an empty document (helm
// renders one for a template whose condition is false) from a manifest.
func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for line := range bytes.Lines(doc) {
		trimmed := bytes.TrimSpace(line)
		if !bytes.HasPrefix(trimmed, []byte("#")) && !bytes.Equal(trimmed, []byte("---")) {
			out.Write(line)
		}
	}
	return out.Bytes()
}

// TestDecodeManifestsIsStrict shows that the decoder the chart tests rely on refuses what the
// API server would silently drop or reject.
func TestDecodeManifestsIsStrict(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string
	}{
		{
			name:    "misspelled field",
			doc:     "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 2\n",
			wantErr: `unknown field "spec.replica"`,
		},
		{
			name:    "wrong case",
			doc:     "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  Replicas: 2\n",
			wantErr: `unknown field "spec.Replicas"`,
		},
		{
			name:    "field at the wrong level",
			doc:     "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  ports: []\n",
			wantErr: `unknown field "metadata.ports"`,
		},
		{
			name:    "wrong type",
			doc:     "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: x\nspec:\n  selector: all\n",
			wantErr: "cannot unmarshal string",
		},
		{
			name:    "bad quantity",
			doc:     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          resources:\n            limits:\n              memory: lots\n",
			wantErr: "quantities must match",
		},
		{
			name:    "duplicate field",
			doc:     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  name: y\n",
			wantErr: `key "name" already set`,
		},
		{
			name:    "unknown kind",
			doc:     "apiVersion: apps/v1beta1\nkind: Deployment\nmetadata:\n  name: x\n",
			wantErr: "unexpected kind apps/v1beta1 Deployment",
		},
		{
			name:    "no name",
			doc:     "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
			wantErr: "has no name",
		},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			_, err := decodeManifests(test.doc)
			if err == nil || !strings.Contains(err.Error(), test.wantErr) {
				t.Fatalf("decodeManifests() error = %v, want one containing %q", err, test.wantErr)
			}
		})
	}

	t.Run("valid documents with comments", func(t *testing.T) {
		objects, err := decodeManifests("---\n# Source: x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n")
		if err != nil {
			t.Fatal(err)
		}
		if len(objects) != 2 || objects[0].ID != "ConfigMap/a" || objects[1].ID != "Service/b" {
			t.Fatalf("decodeManifests() = %+v, want ConfigMap/a and Service/b", objects)
		}
	})
}
