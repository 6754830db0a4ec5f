package converge

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// SeedFunc records one result published before, by this replica or another, with its object
// path: a restarted writer learns the objects it manages and the revisions applied.
type SeedFunc func(result *orgsyncv1.WriterResult, path string)

// Results is a writer's view of its target's results on RESULTS: loaded at start, then followed
// live, so object ids and revisions of other replicas are known here.
type Results struct {
	follower jetstream.Consumer
	seed     SeedFunc
}

// LoadResults reads the newest result of every object of target into seed and returns the live
// follower of the results published after. The follower starts before the read, so no result
// falls between the two.
func LoadResults(ctx context.Context, js jetstream.JetStream, target orgsyncv1.Target, seed SeedFunc) (*Results, error) {
	filter := subject.ResultsFilter(target)
	follower, err := js.OrderedConsumer(ctx, stream.Results, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("following RESULTS: %w", err)
	}
	r := &Results{follower: follower, seed: seed}
	if err := stream.ReadLatest(ctx, js, stream.Results, filter, r.take); err != nil {
		return nil, fmt.Errorf("loading earlier results: %w", err)
	}
	return r, nil
}

// Follow seeds the results published since LoadResults until ctx ends.
func (r *Results) Follow(ctx context.Context) error {
	return stream.Consume(ctx, r.follower, func(_ context.Context, msg jetstream.Msg) error { return r.take(msg) }, stream.ConsumeOptions{NoAck: true})
}

func (r *Results) take(msg jetstream.Msg) error {
	var result orgsyncv1.WriterResult
	if err := stream.Decode(msg, &result); err != nil {
		return err
	}
	r.seed(&result, strings.TrimPrefix(msg.Subject(), "results."))
	return nil
}

// DirectoryLatest returns the Latest of stream DIRECTORY, a compacted log: the last message on
// the object's subject.
func DirectoryLatest(ctx context.Context, js jetstream.JetStream) (Latest, error) {
	directory, err := js.Stream(ctx, stream.Directory)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.Directory, err)
	}
	return func(ctx context.Context, path string) (*orgsyncv1.DesiredObject, error) {
		msg, err := directory.GetLastMsgForSubject(ctx, "dir."+path)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var obj orgsyncv1.DesiredObject
		if err := proto.Unmarshal(msg.Data, &obj); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", msg.Subject, err)
		}
		return &obj, nil
	}, nil
}

// DesiredStates returns a reader of target's whole desired state on DIRECTORY, for a drift pass.
func DesiredStates(js jetstream.JetStream, target orgsyncv1.Target) func(context.Context) ([]*orgsyncv1.DesiredObject, error) {
	return func(ctx context.Context) ([]*orgsyncv1.DesiredObject, error) {
		var objs []*orgsyncv1.DesiredObject
		err := stream.ReadLatest(ctx, js, stream.Directory, subject.DirectoryFilter(target), func(msg jetstream.Msg) error {
			var obj orgsyncv1.DesiredObject
			if err := stream.Decode(msg, &obj); err != nil {
				return fmt.Errorf("%s: %w", msg.Subject(), err)
			}
			objs = append(objs, &obj)
			return nil
		})
		return objs, err
	}
}
