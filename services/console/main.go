// Command console serves orgsync's web console: the organisation, workers, groups with the reason
// for each member, plans, approvals and health, for people signed in with OIDC. See
// docs/console.md for its configuration.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/services/console/service"
)

var version = "dev"

func main() {
	if err := server.Main(service.Name, version, run); err != nil {
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := service.ConfigFromEnv(envconfig.FromOS())
	if err != nil {
		return err
	}
	svc, err := service.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
