package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// TestRevokedCredentialsPauseTheWriter revokes the app's credentials in the emulator: the writer
// pauses and says why in its readiness, burns no message, and converges once they work again.
func TestRevokedCredentialsPauseTheWriter(t *testing.T) {
	o := synthOrg(20, 2)
	p := newPipeline(t, emulator.Faults{CredentialsRevoked: true})
	var ready func(context.Context) error
	p.startWriterWith(t, func(cfg *Config) { cfg.PauseProbe = 100 * time.Millisecond }, func(srv *server.Server) { ready = srv.Ready })
	p.publish(t, o.objects)

	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ready(t.Context())
		if err != nil && strings.Contains(err.Error(), "paused:") && strings.Contains(err.Error(), "InvalidAuthenticationToken") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness = %v, want paused with the reason", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if users := p.emulator.Users(); len(users) != 0 {
		t.Fatalf("%d users written with revoked credentials", len(users))
	}

	p.emulator.SetFaults(emulator.Faults{})
	p.waitForResults(t, len(o.objects), time.Minute)
	if got := len(p.emulator.Users()); got != o.workers {
		t.Errorf("%d users after the credentials came back, want %d: messages were lost while paused", got, o.workers)
	}
}
