// Package budget keeps entra-writer inside Microsoft Graph's write quota (about 3,000 writes per
// 150 seconds per app and tenant). The budget is orgsync's one rate limiter (pkg/ratelimit): with
// Redis one GCRA shared by every entra-writer replica, so scaling out does not multiply 429s;
// without Redis, or while Redis cannot be reached, each process keeps its own. A Directory wrapper
// charges every write before it is sent; reads are free. A Pause (pause.go) holds Graph's
// Retry-After for every replica.
package budget

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/ratelimit"
	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
	"github.com/orgsync/orgsync/services/entra-writer/internal/writer"
)

// Limit is a number of writes per window, with the burst allowed at once.
type Limit struct {
	Writes int
	Window time.Duration
	Burst  int
}

// Budget hands out writes. Wait blocks until n writes may be made or ctx ends; TryTake takes n
// writes only if they are available now. Implementations are safe for concurrent use.
type Budget interface {
	Wait(ctx context.Context, n int) error
	TryTake(ctx context.Context, n int) (bool, error)
}

// Limited is a Budget kept by a pkg/ratelimit Limiter under one key.
type Limited struct {
	limiter *ratelimit.Limiter
	key     string
	limit   ratelimit.Limit
}

var _ Budget = (*Limited)(nil)

// NewShared returns a budget in Redis under key, e.g. "graph-writes:<tenant id>", shared by every
// process using the same key; while Redis cannot be reached the process keeps it on its own.
func NewShared(client *redis.Client, key string, limit Limit, logger *slog.Logger) *Limited {
	return newLimited(ratelimit.New(client, "", logger), key, limit)
}

// NewLocal returns a budget of this process alone.
func NewLocal(limit Limit) *Limited {
	return newLimited(ratelimit.New(nil, "", nil), "graph-writes", limit)
}

func newLimited(limiter *ratelimit.Limiter, key string, limit Limit) *Limited {
	return &Limited{limiter: limiter, key: key, limit: ratelimit.Limit{Events: limit.Writes, Period: limit.Window, Burst: max(limit.Burst, 1)}}
}

// Wait implements Budget: more writes than the burst are taken a burst at a time.
func (b *Limited) Wait(ctx context.Context, n int) error {
	return b.limiter.Wait(ctx, b.key, b.limit, n)
}

// TryTake implements Budget; it never fails (without Redis the budget is kept in the process).
func (b *Limited) TryTake(ctx context.Context, n int) (bool, error) {
	ok, _ := b.limiter.Take(ctx, b.key, b.limit, n)
	return ok, nil
}

// Directory charges every write to a budget before passing it on; reads are passed on free. It
// wraps the port method by method, so a method added to writer.Directory does not compile here
// until it is decided whether it is charged. It is safe for concurrent use if the wrapped
// directory is.
type Directory struct {
	dir    writer.Directory
	budget Budget
}

var _ writer.Directory = (*Directory)(nil)

// Wrap returns dir with its writes charged to budget.
func Wrap(dir writer.Directory, budget Budget) *Directory {
	return &Directory{dir: dir, budget: budget}
}

// FindUserByEmployeeID implements writer.Directory: a read, not charged.
func (d *Directory) FindUserByEmployeeID(ctx context.Context, employeeID string) (*directory.User, error) {
	return d.dir.FindUserByEmployeeID(ctx, employeeID)
}

// GetUser implements writer.Directory: a read, not charged.
func (d *Directory) GetUser(ctx context.Context, id string) (*directory.User, error) {
	return d.dir.GetUser(ctx, id)
}

// FindDeletedUserByEmployeeID implements writer.Directory: a read, not charged.
func (d *Directory) FindDeletedUserByEmployeeID(ctx context.Context, employeeID string) (*directory.User, error) {
	return d.dir.FindDeletedUserByEmployeeID(ctx, employeeID)
}

// GetUserByPrincipalName implements writer.Directory: a read, not charged.
func (d *Directory) GetUserByPrincipalName(ctx context.Context, principalName string) (*directory.User, error) {
	return d.dir.GetUserByPrincipalName(ctx, principalName)
}

// FindGroupByMailNickname implements writer.Directory: a read, not charged.
func (d *Directory) FindGroupByMailNickname(ctx context.Context, mailNickname string) (*directory.Group, error) {
	return d.dir.FindGroupByMailNickname(ctx, mailNickname)
}

// GetGroup implements writer.Directory: a read, not charged.
func (d *Directory) GetGroup(ctx context.Context, id string) (*directory.Group, error) {
	return d.dir.GetGroup(ctx, id)
}

// GetManager implements writer.Directory: a read, not charged.
func (d *Directory) GetManager(ctx context.Context, userID string) (string, error) {
	return d.dir.GetManager(ctx, userID)
}

// CreateUser implements writer.Directory.
func (d *Directory) CreateUser(ctx context.Context, attrs directory.UserAttributes, password string) (*directory.User, error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	return d.dir.CreateUser(ctx, attrs, password)
}

// UpdateUser implements writer.Directory.
func (d *Directory) UpdateUser(ctx context.Context, id string, attrs directory.UserAttributes, fields []directory.Field) error {
	return d.charge(ctx, func() error { return d.dir.UpdateUser(ctx, id, attrs, fields) })
}

// RestoreUser implements writer.Directory.
func (d *Directory) RestoreUser(ctx context.Context, id string) (*directory.User, error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	return d.dir.RestoreUser(ctx, id)
}

// DeleteUser implements writer.Directory.
func (d *Directory) DeleteUser(ctx context.Context, id string) error {
	return d.charge(ctx, func() error { return d.dir.DeleteUser(ctx, id) })
}

// CreateGroup implements writer.Directory.
func (d *Directory) CreateGroup(ctx context.Context, attrs directory.GroupAttributes) (*directory.Group, error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	return d.dir.CreateGroup(ctx, attrs)
}

// UpdateGroup implements writer.Directory.
func (d *Directory) UpdateGroup(ctx context.Context, id string, attrs directory.GroupAttributes) error {
	return d.charge(ctx, func() error { return d.dir.UpdateGroup(ctx, id, attrs) })
}

// DeleteGroup implements writer.Directory.
func (d *Directory) DeleteGroup(ctx context.Context, id string) error {
	return d.charge(ctx, func() error { return d.dir.DeleteGroup(ctx, id) })
}

// AddMember implements writer.Directory.
func (d *Directory) AddMember(ctx context.Context, groupID, memberID string) error {
	return d.charge(ctx, func() error { return d.dir.AddMember(ctx, groupID, memberID) })
}

// AddMembers implements writer.Directory: one bind PATCH is one write, whatever its size.
func (d *Directory) AddMembers(ctx context.Context, groupID string, memberIDs []string) error {
	return d.charge(ctx, func() error { return d.dir.AddMembers(ctx, groupID, memberIDs) })
}

// RemoveMember implements writer.Directory.
func (d *Directory) RemoveMember(ctx context.Context, groupID, memberID string) error {
	return d.charge(ctx, func() error { return d.dir.RemoveMember(ctx, groupID, memberID) })
}

// RemoveMembers implements writer.Directory: Graph charges each item of a $batch as a write.
func (d *Directory) RemoveMembers(ctx context.Context, refs []directory.MemberRef) []error {
	started := time.Now()
	if err := d.budget.Wait(ctx, len(refs)); err != nil {
		errs := make([]error, len(refs))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if waited := time.Since(started); waited > time.Millisecond {
		metrics.Default().ThrottleWait(ctx, "budget", waited)
	}
	return d.dir.RemoveMembers(ctx, refs)
}

// RemoveManager implements writer.Directory.
func (d *Directory) RemoveManager(ctx context.Context, userID string) error {
	return d.charge(ctx, func() error { return d.dir.RemoveManager(ctx, userID) })
}

// GroupLicenseErrors implements writer.Directory: reads, not charged.
func (d *Directory) GroupLicenseErrors(ctx context.Context, groupID string) ([]directory.LicenseError, error) {
	return d.dir.GroupLicenseErrors(ctx, groupID)
}

// AssignGroupLicenses implements writer.Directory: a POST, one write.
func (d *Directory) AssignGroupLicenses(ctx context.Context, groupID string, add []directory.License, remove []string) error {
	return d.charge(ctx, func() error { return d.dir.AssignGroupLicenses(ctx, groupID, add, remove) })
}

// RevokeSignInSessions implements writer.Directory: a POST, one write.
func (d *Directory) RevokeSignInSessions(ctx context.Context, userID string) error {
	return d.charge(ctx, func() error { return d.dir.RevokeSignInSessions(ctx, userID) })
}

// CreateTemporaryAccessPass implements writer.Directory: a POST, one write.
func (d *Directory) CreateTemporaryAccessPass(ctx context.Context, userID string, start time.Time, lifetimeMinutes int, usableOnce bool) (*directory.AccessPass, error) {
	var pass *directory.AccessPass
	err := d.charge(ctx, func() error {
		var err error
		pass, err = d.dir.CreateTemporaryAccessPass(ctx, userID, start, lifetimeMinutes, usableOnce)
		return err
	})
	return pass, err
}

// DeleteTemporaryAccessPass implements writer.Directory: a DELETE, one write.
func (d *Directory) DeleteTemporaryAccessPass(ctx context.Context, userID, passID string) error {
	return d.charge(ctx, func() error { return d.dir.DeleteTemporaryAccessPass(ctx, userID, passID) })
}

// SendMail implements writer.Directory: a POST, one write.
func (d *Directory) SendMail(ctx context.Context, senderID string, mail directory.Mail) error {
	return d.charge(ctx, func() error { return d.dir.SendMail(ctx, senderID, mail) })
}

// ResetPassword implements writer.Directory: a PATCH, one write.
func (d *Directory) ResetPassword(ctx context.Context, userID string, password directory.Secret) error {
	return d.charge(ctx, func() error { return d.dir.ResetPassword(ctx, userID, password) })
}

// SetManager implements writer.Directory.
func (d *Directory) SetManager(ctx context.Context, userID, managerID string) error {
	return d.charge(ctx, func() error { return d.dir.SetManager(ctx, userID, managerID) })
}

func (d *Directory) charge(ctx context.Context, write func() error) error {
	if err := d.wait(ctx); err != nil {
		return err
	}
	return write()
}

// wait takes one write from the budget and records how long that took.
func (d *Directory) wait(ctx context.Context) error {
	started := time.Now()
	err := d.budget.Wait(ctx, 1)
	if waited := time.Since(started); waited > time.Millisecond {
		metrics.Default().ThrottleWait(ctx, "budget", waited)
	}
	return err
}
