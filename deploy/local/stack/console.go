package stack

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/auth/authtest"
	"github.com/orgsync/orgsync/pkg/logging"
	"github.com/orgsync/orgsync/pkg/server"
	console "github.com/orgsync/orgsync/services/console/service"
)

// ConsoleClientID is the console's OIDC client id at the stack's dev issuer.
const ConsoleClientID = "orgsync-console"

// DevUsers are the people who can sign in at the dev issuer, one per role. Their subjects are
// what org-model records as who approved.
var DevUsers = []authtest.User{
	{Subject: "vera.viewer", Name: "Vera Viewer", Roles: []auth.Role{auth.Viewer}},
	{Subject: "alex.approver", Name: "Alex Approver", Roles: []auth.Role{auth.Approver}},
	{Subject: "oscar.operator", Name: "Oscar Operator", Roles: []auth.Role{auth.Operator}},
	{Subject: "ada.admin", Name: "Ada Admin", Roles: []auth.Role{auth.Admin}},
}

// startIssuer starts the dev OIDC issuer with DevUsers, on the given port (0: a free one).
func startIssuer(port int) (*authtest.Issuer, error) {
	issuer, err := authtest.NewDevIssuer(addr(port))
	if err != nil {
		return nil, err
	}
	for _, user := range DevUsers {
		issuer.AddUser(user)
	}
	return issuer, nil
}

// startConsole starts the console against the stack's org-model, hr-ingest and entra-writer,
// signing people in at the dev issuer, and registers its callback there.
func (s *Stack) startConsole(ctx context.Context) error {
	sources := []string{Source}
	for _, source := range s.opts.Sources {
		sources = append(sources, source.Name)
	}
	writers := []console.Writer{{
		Name:       "entra-writer",
		AdminURL:   "http://" + s.EntraWriter.AdminAddr(),
		MetricsURL: "http://" + s.EntraWriter.HTTPAddr() + "/metrics",
	}}
	if s.opts.Ports.ADWriterAdmin != 0 {
		writers = append(writers, console.Writer{
			Name:       "ad-writer",
			AdminURL:   "http://" + addr(s.opts.Ports.ADWriterAdmin),
			MetricsURL: "http://" + addr(s.opts.Ports.ADWriterHTTP) + "/metrics",
		})
	}
	publicURL := ""
	if s.opts.Ports.Console != 0 {
		publicURL = "http://" + addr(s.opts.Ports.Console)
	}
	svc, err := console.New(ctx, console.Config{
		Server:      server.Config{Name: console.Name, HTTPAddr: addr(s.opts.Ports.ConsoleHTTP), GRPCAddr: addr(0), ShutdownTimeout: 5 * time.Second, Auth: s.auth},
		ConsoleAddr: addr(s.opts.Ports.Console), PublicURL: publicURL,
		ClientID: ConsoleClientID, Scopes: []string{"profile"},
		SessionKey:   []byte(rand.Text() + rand.Text()),
		OrgModelAddr: s.OrgModel.GRPCAddr(), HRIngestURL: "http://" + s.HRIngest.HTTPAddr(), Sources: sources,
		Writers: writers, TraceURL: s.opts.TraceURL, Targets: s.opts.ConsoleTargets,
	}, logging.New(s.opts.LogWriter, console.Name, s.opts.LogLevel))
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	s.Issuer.AddClient(ConsoleClientID, svc.RedirectURL())
	s.Console = svc
	s.run(ctx, svc.Run)
	return nil
}

// ConsoleURL is where the console is served.
func (s *Stack) ConsoleURL() string { return s.Console.PublicURL() }
