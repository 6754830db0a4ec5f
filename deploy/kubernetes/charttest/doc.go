// Package charttest holds the offline tests of orgsync's Kubernetes packaging: the Helm chart
// (charts/orgsync) rendered with every example values file and decoded strictly into the
// Kubernetes API types, its values schema, the Tiltfile's syntax and the image build's binaries.
//
// It is a module of its own, outside go.work, so that Helm and the Kubernetes libraries never
// move the services' dependency versions; helm itself is pinned by this module's tool directive.
// Run it with `make chart-test`.
package charttest
