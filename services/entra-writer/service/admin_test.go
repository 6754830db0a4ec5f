package service

import (
	"testing"

	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/converge/convergetest"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// TestAdminRoutesAccess calls every admin route without credentials, with a valid token that
// lacks the role, and with the role the route needs; the routes are not on the open HTTP port.
func TestAdminRoutesAccess(t *testing.T) {
	p := newPipeline(t, emulator.Faults{})
	authCfg, tokens := authtest.RoleTokens(t)
	issuer := authtest.NewIssuer(t)
	authCfg.Issuer, authCfg.Audience = issuer.URL(), authtest.Audience
	svc := p.startWriterWith(t, func(cfg *Config) { cfg.Server.Auth = authCfg }, nil)
	convergetest.CheckAdminAccess(t, svc.AdminAddr(), svc.HTTPAddr(), tokens, issuer.Token("someone"))
}
