package service

import (
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/orgsync/orgsync/pkg/auth"
)

// TestReflectionDescribesTheQueryAPI: with OrgModelService generated into its own Go package
// (orgsyncv1grpc), grpcurl still finds it by its wire name through the running service's
// reflection, declared in orgsync/v1/orgmodel_service.proto with its methods.
func TestReflectionDescribesTheQueryAPI(t *testing.T) {
	h := newHarness(t)
	svc, _ := h.start(t)
	conn, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(h.issuer.Token(approverSubject, auth.Viewer))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ask := func(request *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(request); err != nil {
			t.Fatal(err)
		}
		response, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return response
	}

	const serviceName = "orgsync.v1.OrgModelService"
	var services []string
	for _, service := range ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
		services = append(services, service.GetName())
	}
	if !slices.Contains(services, serviceName) {
		t.Fatalf("reflection lists %v, want %s among them", services, serviceName)
	}

	files := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: serviceName}}).
		GetFileDescriptorResponse().GetFileDescriptorProto()
	if len(files) == 0 {
		t.Fatalf("reflection has no file declaring %s", serviceName)
	}
	var declaring descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(files[0], &declaring); err != nil {
		t.Fatal(err)
	}
	if declaring.GetName() != "orgsync/v1/orgmodel_service.proto" || declaring.GetPackage() != "orgsync.v1" || len(declaring.GetService()) != 1 {
		t.Fatalf("%s is declared in %s (package %s, %d services), want orgsync/v1/orgmodel_service.proto in orgsync.v1",
			serviceName, declaring.GetName(), declaring.GetPackage(), len(declaring.GetService()))
	}
	var methods []string
	for _, method := range declaring.GetService()[0].GetMethod() {
		methods = append(methods, method.GetName())
	}
	if !slices.Contains(methods, "GetWorker") || !slices.Contains(methods, "Approve") {
		t.Errorf("methods by reflection = %v, want the query API's (GetWorker, Approve, …)", methods)
	}
}
