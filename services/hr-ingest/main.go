// Command hr-ingest receives HR webhooks, SCIM bulk requests and CSV snapshots, verifies and
// validates them, and publishes them to stream HR. See the README for its configuration.
//
//	hr-ingest                                   serve
//	hr-ingest snapshot-upload [flags] FILE.csv  upload a CSV export to a running hr-ingest
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/upload"
	"github.com/orgsync/orgsync/services/hr-ingest/service"
)

var version = "dev"

// openAPI is the document served at GET /openapi.yaml.
//
//go:embed openapi.yaml
var openAPI []byte

func main() {
	if len(os.Args) > 1 && os.Args[1] == "snapshot-upload" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := snapshotUpload(ctx, os.Args[2:], os.Getenv, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "hr-ingest snapshot-upload:", err)
			os.Exit(1)
		}
		return
	}
	if err := server.Main(service.Name, version, run); err != nil {
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := service.ConfigFromEnv(envconfig.FromOS())
	if err != nil {
		return err
	}
	cfg.OpenAPI = openAPI
	svc, err := service.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}

// snapshotUpload posts a CSV export to a running hr-ingest. The token comes from a file
// (-token-file) or HR_INGEST_TOKEN, never from a flag, so it stays out of shell history.
func snapshotUpload(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	flags := flag.NewFlagSet("snapshot-upload", flag.ContinueOnError)
	baseURL := flags.String("url", "http://127.0.0.1:8080", "hr-ingest's HTTP address")
	source := flags.String("source", "", "the csv source's name (required)")
	tokenFile := flags.String("token-file", "", "file holding the source's bearer token (default: $HR_INGEST_TOKEN)")
	attempts := flags.Int("attempts", 5, "tries while hr-ingest answers 429 or 503")
	idempotencyKey := flags.String("idempotency-key", "", "names this upload: a later upload with the same key (within the stream's duplicate window) is the same snapshot, stored once (default: a random key, so every run is a new snapshot)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 || *source == "" {
		return errors.New("usage: hr-ingest snapshot-upload -source NAME [-url URL] [-token-file FILE] FILE.csv")
	}
	token := strings.TrimSpace(getenv("HR_INGEST_TOKEN"))
	if *tokenFile != "" {
		data, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("token file: %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	if token == "" {
		return errors.New("no token: use -token-file or HR_INGEST_TOKEN")
	}
	body, err := os.ReadFile(flags.Arg(0))
	if err != nil {
		return err
	}
	result, err := upload.CSV(ctx, body, upload.Options{BaseURL: *baseURL, Source: *source, Token: token, Attempts: *attempts, IdempotencyKey: *idempotencyKey})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "snapshot %s accepted: %d workers (%d already stored)\n", result.SnapshotID, result.RecordCount, result.Duplicates)
	return nil
}
