// Command ad-writer converges Active Directory to the desired state on stream DIRECTORY
// over LDAP (go-ldap/v3) and reports to stream RESULTS. See docs/ad-writer.md for its configuration.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/services/ad-writer/service"
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
