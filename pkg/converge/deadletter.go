package converge

// Dead letters: the desired states a writer parked on stream DEADLETTER after a permanent failure
// (an invalid attribute, a conflict; see Engine.Park). After the cause is fixed — in HR, in the
// policy, or in the directory — a replay puts each parked state back on DIRECTORY, but only while
// it is still the newest desired state of its object; a parked state that a newer one has
// replaced is obsolete and is dropped.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Letter is one parked desired state.
type Letter struct {
	// Path names the object, e.g. "entra.user.E1001".
	Path     string `json:"path"`
	Revision uint64 `json:"revision"`
	// Error is the writer's reason, from its latest result for the object.
	Error string `json:"error,omitempty"`
	// Property is the directory property the failure is about (e.g. "userPrincipalName"), when
	// the directory said which.
	Property string `json:"property,omitempty"`
}

// Box reads and replays the dead letters of one target. It is safe for concurrent use.
type Box struct {
	js     jetstream.JetStream
	target orgsyncv1.Target
	pub    *stream.Publisher
}

// NewBox returns the dead-letter box of target.
func NewBox(js jetstream.JetStream, target orgsyncv1.Target) *Box {
	return &Box{js: js, target: target, pub: stream.NewPublisher(js)}
}

func (b *Box) filter() string { return "dead." + subject.TargetName(b.target) + ".>" }

// List returns the parked states with the writer's reasons.
func (b *Box) List(ctx context.Context) ([]Letter, error) {
	var letters []Letter
	err := stream.ReadLatest(ctx, b.js, stream.DeadLetter, b.filter(), func(msg jetstream.Msg) error {
		var obj orgsyncv1.DesiredObject
		if err := stream.Decode(msg, &obj); err != nil {
			return err
		}
		path := strings.TrimPrefix(msg.Subject(), "dead.")
		letter := Letter{Path: path, Revision: obj.GetRevision()}
		if result, err := b.latest(ctx, stream.Results, subject.ResultSubject(path), &orgsyncv1.WriterResult{}); err == nil {
			letter.Error = result.(*orgsyncv1.WriterResult).GetErrorMessage()
			letter.Property = result.(*orgsyncv1.WriterResult).GetProperty()
		}
		letters = append(letters, letter)
		return nil
	})
	return letters, err
}

// ReplayOutcome counts what a replay did.
type ReplayOutcome struct {
	Replayed int `json:"replayed"`
	Obsolete int `json:"obsolete"`
}

// Replay puts every parked state that is still current back on DIRECTORY and removes it from the
// box; parked states a newer desired state replaced are removed without replay.
func (b *Box) Replay(ctx context.Context) (ReplayOutcome, error) {
	var outcome ReplayOutcome
	letters, err := b.List(ctx)
	if err != nil {
		return outcome, err
	}
	deadStream, err := b.js.Stream(ctx, stream.DeadLetter)
	if err != nil {
		return outcome, fmt.Errorf("stream %s: %w", stream.DeadLetter, err)
	}
	for _, letter := range letters {
		current, err := b.latest(ctx, stream.Directory, "dir."+letter.Path, &orgsyncv1.DesiredObject{})
		if err != nil {
			return outcome, fmt.Errorf("current desired state of %s: %w", letter.Path, err)
		}
		desired := current.(*orgsyncv1.DesiredObject)
		if desired.GetRevision() == letter.Revision {
			// A message id of its own, so the stream does not take the replay for a duplicate.
			msgID := fmt.Sprintf("%s:%d:replay:%d", letter.Path, letter.Revision, time.Now().UnixNano())
			if _, err := b.pub.Publish(ctx, "dir."+letter.Path, msgID, desired); err != nil {
				return outcome, err
			}
			outcome.Replayed++
		} else {
			outcome.Obsolete++
		}
		if err := deadStream.Purge(ctx, jetstream.WithPurgeSubject(subject.DeadLetterSubject(letter.Path))); err != nil {
			return outcome, fmt.Errorf("removing the dead letter of %s: %w", letter.Path, err)
		}
	}
	return outcome, nil
}

// latest reads the newest message of subject on streamName into m.
func (b *Box) latest(ctx context.Context, streamName, subject string, m proto.Message) (proto.Message, error) {
	s, err := b.js.Stream(ctx, streamName)
	if err != nil {
		return nil, err
	}
	raw, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(raw.Data, m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", subject, err)
	}
	return m, nil
}
