package publish

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/audit"
	"github.com/orgsync/orgsync/services/org-model/internal/desired"
)

// Seeder takes what DIRECTORY already holds, so that only what differs is published.
type Seeder interface {
	Seed(obj *orgsyncv1.DesiredObject) error
}

var _ Seeder = (*desired.Publisher)(nil)

// LoadPublished reads the newest desired state of every object on stream DIRECTORY into seeder,
// and each one's cause (with the trace that published it) into causes, for the audit trail. It
// blocks until DIRECTORY has been read to its end or ctx ends.
func LoadPublished(ctx context.Context, js jetstream.JetStream, seeder Seeder, causes Causes) error {
	err := stream.ReadLatest(ctx, js, stream.Directory, "dir.>", func(msg jetstream.Msg) error {
		var obj orgsyncv1.DesiredObject
		if err := stream.Decode(msg, &obj); err != nil {
			return err
		}
		if path, err := subject.ObjectPath(&obj); err == nil {
			producer := otel.GetTextMapPropagator().Extract(context.Background(), stream.HeaderCarrier(msg.Headers()))
			causes.Record(path, obj.GetRevision(), audit.Cause{Cause: obj.GetCause(), TraceID: audit.TraceID(producer), ApprovalBatchID: obj.GetCause().GetApprovalBatchId()})
		}
		return seeder.Seed(&obj)
	})
	if err != nil {
		return fmt.Errorf("loading the published desired state: %w", err)
	}
	return nil
}
