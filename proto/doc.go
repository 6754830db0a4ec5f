// Package proto is the root of orgsync's contracts: the .proto files under orgsync/v1 and the Go
// code generated from them — the messages in package orgsyncv1, and OrgModelService's gRPC client
// and server in package orgsyncv1grpc (apart, so code that needs only the messages links no
// gRPC). Regenerate with `make generate`; `make generate-check` fails when the committed code is
// stale.
package proto
