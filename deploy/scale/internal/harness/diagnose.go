package harness

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Diagnosis says where a difference comes from: the desired state the running org-model
// published (compared with the fresh one), and the writers' newest results.
type Diagnosis struct {
	// DesiredDiffers counts objects whose published desired state differs from the fresh one
	// (missing, extra or different content).
	DesiredDiffers int
	// Examples are a few of those paths.
	Examples []string
	// Outcomes counts the writers' newest result per object by outcome.
	Outcomes map[string]int
	// Failed are a few FAILED results: path, error code and message.
	Failed []string
}

// Diagnose reads DIRECTORY and RESULTS of one target from the JetStream at url and compares with
// expected (that target's fresh desired state).
func Diagnose(ctx context.Context, url string, target orgsyncv1.Target, expected []*orgsyncv1.DesiredObject) (Diagnosis, error) {
	d := Diagnosis{Outcomes: map[string]int{}}
	nc, err := nats.Connect(url)
	if err != nil {
		return d, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return d, err
	}
	published, err := ReadDesired(ctx, js, subject.DirectoryFilter(target))
	if err != nil {
		return d, err
	}
	content := func(obj *orgsyncv1.DesiredObject) proto.Message {
		switch {
		case obj.GetUser() != nil:
			return obj.GetUser()
		case obj.GetGroup() != nil:
			return obj.GetGroup()
		default:
			return obj.GetMembership()
		}
	}
	want := map[string]*orgsyncv1.DesiredObject{}
	for _, obj := range expected {
		path, _ := subject.ObjectPath(obj)
		want[path] = obj
	}
	seen := map[string]bool{}
	for _, obj := range published {
		path, _ := subject.ObjectPath(obj)
		seen[path] = true
		if w, ok := want[path]; !ok {
			d.note("extra " + path)
		} else if !proto.Equal(content(w), content(obj)) {
			d.note(fmt.Sprintf("different %s: published %v, fresh %v", path, content(obj), content(w)))
		}
	}
	for path := range want {
		if !seen[path] {
			d.note("not published " + path)
		}
	}
	sort.Strings(d.Examples)
	err = stream.ReadLatest(ctx, js, stream.Results, subject.ResultsFilter(target), func(msg jetstream.Msg) error {
		var r orgsyncv1.WriterResult
		if err := stream.Decode(msg, &r); err != nil {
			return err
		}
		outcome := strings.TrimPrefix(r.GetOutcome().String(), "OUTCOME_")
		d.Outcomes[outcome]++
		if r.GetOutcome() == orgsyncv1.Outcome_OUTCOME_FAILED && len(d.Failed) < 10 {
			d.Failed = append(d.Failed, fmt.Sprintf("%s: %s %s", strings.TrimPrefix(msg.Subject(), "results."), r.GetErrorCode(), r.GetErrorMessage()))
		}
		return nil
	})
	return d, err
}

func (d *Diagnosis) note(example string) {
	d.DesiredDiffers++
	if len(d.Examples) < 10 {
		d.Examples = append(d.Examples, example)
	}
}
