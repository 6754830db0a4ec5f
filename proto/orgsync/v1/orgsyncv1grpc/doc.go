// Package orgsyncv1grpc is the generated gRPC client and server of OrgModelService
// (orgsync/v1/orgmodel_service.proto); its messages are in package orgsyncv1.
//
// It is a package apart from the messages so that code which only reads or writes orgsync's
// messages — org-model's domain above all — does not link google.golang.org/grpc. Only the
// edges that serve or call the API import it: org-model's query server and wiring, the console,
// orgsyncctl and the local stack. Regenerate with `make generate`; this file is hand-written.
package orgsyncv1grpc
