// Package proto is the root of orgsync's contracts: the .proto files under orgsync/v1 and the Go
// code generated from them (package orgsyncv1). Regenerate with `make generate`; `make
// generate-check` fails when the committed code is stale.
package proto
