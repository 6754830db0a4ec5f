package hrfollow_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/orgsync/orgsync/pkg/stream/streamtest"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/org-model/internal/hrfollow"
)

// TestFollowStoppedWhileStartingIsNoError: a service stopped right after it became ready may
// cancel Follow before its consumer exists; that is a stop, and Follow returns nil (it returned
// "consuming HR: context canceled", which failed the stopping service's Run).
func TestFollowStoppedWhileStartingIsNoError(t *testing.T) {
	srv := streamtest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := hrfollow.New(srv.JS, slog.New(slog.DiscardHandler)).Follow(ctx, 0, func(context.Context, *orgsyncv1.HREvent, uint64) error {
		t.Error("an event applied after the stop")
		return nil
	})
	if err != nil {
		t.Errorf("Follow stopped before it started = %v, want nil", err)
	}
}
