// Package desired publishes org-model's desired directory state to stream DIRECTORY, one subject
// per object, and only when an object's state has changed: each object's revision grows by one
// with every change, and the last published state of every object is remembered (seeded from the
// stream at start), so a recomputation that changes nothing publishes nothing.
package desired

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/model"
)

// Sender stores one message durably.
type Sender interface {
	Publish(ctx context.Context, subject, msgID string, m proto.Message) (*jetstream.PubAck, error)
}

// Publisher publishes changed desired objects. Publish and Seed are called by one goroutine;
// Revision may be called concurrently.
type Publisher struct {
	sender Sender

	mu        sync.RWMutex
	published map[string]publishedObject // by object path
	// enabledUsers and memberships count what the published state holds, for the guard's shares.
	enabledUsers, memberships int
}

type publishedObject struct {
	last *orgsyncv1.DesiredObject
}

// NewPublisher returns a Publisher that has published nothing yet.
func NewPublisher(sender Sender) *Publisher {
	return &Publisher{sender: sender, published: map[string]publishedObject{}}
}

// Seed records an object already on stream DIRECTORY.
func (p *Publisher) Seed(obj *orgsyncv1.DesiredObject) error {
	path, err := subject.ObjectPath(obj)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.store(path, publishedObject{last: obj})
	return nil
}

// Publish publishes obj with the next revision and cause, unless it equals what was last published
// for the object, or it is a tombstone of an object never published. It reports whether it
// published.
func (p *Publisher) Publish(ctx context.Context, obj *orgsyncv1.DesiredObject, cause *orgsyncv1.Cause) (bool, error) {
	path, err := subject.ObjectPath(obj)
	if err != nil {
		return false, err
	}
	p.mu.RLock()
	previous, known := p.published[path]
	p.mu.RUnlock()
	if known && model.Same(previous.last, obj) || !known && obj.GetTombstone() {
		return false, nil
	}
	next := proto.CloneOf(obj)
	next.Revision = previous.last.GetRevision() + 1
	next.Cause = cause
	if _, err := p.sender.Publish(ctx, "dir."+path, fmt.Sprintf("%s:%d", path, next.Revision), next); err != nil {
		return false, err
	}
	p.mu.Lock()
	p.store(path, publishedObject{last: next})
	p.mu.Unlock()
	return true, nil
}

func (p *Publisher) store(path string, next publishedObject) {
	p.count(p.published[path].last, -1)
	p.count(next.last, 1)
	p.published[path] = next
}

func (p *Publisher) count(obj *orgsyncv1.DesiredObject, delta int) {
	if obj == nil || obj.GetTombstone() {
		return
	}
	if obj.GetUser().GetAccountEnabled() {
		p.enabledUsers += delta
	}
	if obj.GetMembership() != nil {
		p.memberships += delta
	}
}

// Totals returns how many enabled users and memberships the published state holds.
func (p *Publisher) Totals() (enabledUsers, memberships int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.enabledUsers, p.memberships
}

// Last returns the last published state of the object at path, or nil.
func (p *Publisher) Last(path string) *orgsyncv1.DesiredObject {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.published[path].last
}

// Revision returns the last published revision of the object at path.
func (p *Publisher) Revision(path string) (uint64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	published, ok := p.published[path]
	return published.last.GetRevision(), ok
}

// Live returns the last published state of every object that exists (is not a tombstone), sorted
// by path.
func (p *Publisher) Live() []*orgsyncv1.DesiredObject {
	p.mu.RLock()
	defer p.mu.RUnlock()
	paths := make([]string, 0, len(p.published))
	for path, published := range p.published {
		if !published.last.GetTombstone() {
			paths = append(paths, path)
		}
	}
	sort.Strings(paths)
	live := make([]*orgsyncv1.DesiredObject, len(paths))
	for i, path := range paths {
		live[i] = p.published[path].last
	}
	return live
}
