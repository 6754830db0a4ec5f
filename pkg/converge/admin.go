package converge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/metrics"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Admin is what every writer serves on its authenticated admin listener, checks for readiness
// and reports for `orgsyncctl status`.
type Admin struct {
	// Service is the writer's name in status ("entra-writer").
	Service string
	Target  orgsyncv1.Target
	JS      jetstream.JetStream
	Pause   *Pause
	DryRun  bool
	// Drift runs one drift pass now and returns what it found (JSON).
	Drift func(context.Context) (any, error)
	// LastDrift is when the last drift pass ended (zero: none yet).
	LastDrift func() time.Time
	// Lease, when set, says whether this replica is the active one: a standby reports "standby"
	// and refuses a drift pass (it would write beside the active replica).
	Lease  *Lease
	Logger *slog.Logger
}

// errStandby refuses work only the active replica may do.
type errStandby struct{ holder string }

func (e errStandby) Error() string {
	if e.holder == "" {
		return "this replica is on standby and no replica holds the writer's lease yet; try again shortly"
	}
	return fmt.Sprintf("this replica is on standby; the active replica is %s", e.holder)
}

// Serve adds the admin routes to srv — dead letters (viewer), their replay and a drift pass now
// (operator) — and a readiness check that fails while the writer is paused.
func (a Admin) Serve(srv *server.Server) {
	box := NewBox(a.JS, a.Target)
	srv.HandleAdmin("GET /v1/dead-letters", auth.Viewer, a.json(func(r *http.Request) (any, error) { return box.List(r.Context()) }))
	srv.HandleAdmin("POST /v1/dead-letters/replay", auth.Operator, a.json(func(r *http.Request) (any, error) { return box.Replay(r.Context()) }))
	if a.Drift != nil {
		srv.HandleAdmin("POST /v1/drift/reconcile", auth.Operator, a.json(func(r *http.Request) (any, error) {
			if a.Lease != nil && !a.Lease.Active() {
				holder, _ := a.Lease.CurrentHolder(r.Context())
				return nil, errStandby{holder}
			}
			return a.Drift(r.Context())
		}))
	}
	srv.AddCheck("writer", func(context.Context) error {
		if paused, reason := a.Pause.Paused(); paused {
			return fmt.Errorf("paused: %s", reason)
		}
		return nil
	})
}

// Status is what this replica reports for `orgsyncctl status`: readiness, running / standby /
// paused (and why) / dry run, the last drift pass, and the dead letters waiting for a replay.
func (a Admin) Status(ready func(context.Context) error) func(context.Context) *orgsyncv1.ServiceStatus {
	readyStatus := stream.ReadyStatus(a.Service, stream.Instance(), ready)
	return func(ctx context.Context) *orgsyncv1.ServiceStatus {
		st := readyStatus(ctx)
		st.State = "running"
		if a.Lease != nil && !a.Lease.Active() {
			st.State = "standby"
		} else if paused, reason := a.Pause.Paused(); paused {
			st.State, st.PausedReason = "paused", reason
		} else if a.DryRun {
			st.State = "dry-run"
		}
		if a.LastDrift != nil {
			if last := a.LastDrift(); !last.IsZero() {
				st.LastDriftReconcile = timestamppb.New(last)
			}
		}
		target := subject.TargetName(a.Target)
		if dead, err := a.JS.Stream(ctx, stream.DeadLetter); err == nil {
			if info, err := dead.Info(ctx, jetstream.WithSubjectFilter("dead."+target+".>")); err == nil {
				st.DeadLetters = int64(len(info.State.Subjects))
				metrics.Default().DeadLetterSize(ctx, target, st.DeadLetters)
			}
		}
		return st
	}
}

// json answers with the JSON of what serve returns, or 500 with the error.
func (a Admin) json(serve func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := serve(r)
		if standby := (errStandby{}); errors.As(err, &standby) {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		if err != nil {
			a.Logger.ErrorContext(r.Context(), "admin request failed", "path", r.URL.Path, "error", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
}
