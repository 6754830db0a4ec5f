package orgsyncv1grpc_test

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
)

// TestOnlyTheServiceFileHasItsOwnGoPackage keeps what buf's PACKAGE_SAME_GO_PACKAGE (off for
// orgsync.v1, see buf.yaml) protected: every file of proto package orgsync.v1 generates into
// package orgsyncv1, except orgmodel_service.proto, which declares only OrgModelService (no
// message or enum, so no type leaves orgsyncv1) and generates into orgsyncv1grpc.
func TestOnlyTheServiceFileHasItsOwnGoPackage(t *testing.T) {
	const (
		messagesGoPackage = "github.com/orgsync/orgsync/proto/orgsync/v1;orgsyncv1"
		serviceGoPackage  = "github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc;orgsyncv1grpc"
		serviceFile       = "orgsync/v1/orgmodel_service.proto"
	)
	// The service is registered by this package's generated code: linking it links its file.
	if got := orgsyncv1grpc.OrgModelService_ServiceDesc.ServiceName; got != "orgsync.v1.OrgModelService" {
		t.Fatalf("service name on the wire = %q, want orgsync.v1.OrgModelService", got)
	}
	files := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("orgsync.v1", func(file protoreflect.FileDescriptor) bool {
		files++
		goPackage := file.Options().(*descriptorpb.FileOptions).GetGoPackage()
		if file.Path() == serviceFile {
			if goPackage != serviceGoPackage {
				t.Errorf("%s: go_package = %q, want %q", file.Path(), goPackage, serviceGoPackage)
			}
			if file.Messages().Len() != 0 || file.Enums().Len() != 0 || file.Extensions().Len() != 0 {
				t.Errorf("%s declares types; only services belong there (types go to orgsyncv1)", file.Path())
			}
			if file.Services().Len() == 0 {
				t.Errorf("%s declares no service", file.Path())
			}
			return true
		}
		if goPackage != messagesGoPackage {
			t.Errorf("%s: go_package = %q, want %q", file.Path(), goPackage, messagesGoPackage)
		}
		if file.Services().Len() != 0 {
			t.Errorf("%s declares a service; services belong in %s, so their gRPC code stays out of orgsyncv1", file.Path(), serviceFile)
		}
		return true
	})
	if files < 2 {
		t.Fatalf("found %d files of package orgsync.v1 in the registry, want the service file and the message files", files)
	}
}
