// Command local runs the whole orgsync pipeline on one machine for development (`make run`):
// embedded JetStream, the Graph emulator, hr-ingest, org-model and entra-writer, loaded with a
// small sample company through hr-ingest's real webhook endpoint.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/logging"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orgsync local:", err)
		os.Exit(1)
	}
}

// run starts the stack, prints where it listens to stdout, loads the sample and serves until ctx
// ends.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("orgsync-local", flag.ContinueOnError)
	storeDir := flags.String("store", "", "JetStream store directory (default: a new temporary directory)")
	sample := flags.String("sample", "deploy/local/sample/company.json", "events to load at start; empty loads nothing")
	logLevel := flags.String("log-level", "warn", "service log level (debug, info, warn, error)")
	randomPorts := flags.Bool("random-ports", false, "listen on free ports instead of the fixed 1408x/1808x/1908x ones")
	defaultTokenFile, err := auth.DefaultTokenFile()
	if err != nil {
		return err
	}
	tokenFile := flags.String("token-file", defaultTokenFile, "where to write the dev admin token, for orgsyncctl; empty writes none")
	if err := flags.Parse(args); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	level, err := logging.ParseLevel(*logLevel)
	if err != nil {
		return err
	}
	if *storeDir == "" {
		if *storeDir, err = os.MkdirTemp("", "orgsync-local-"); err != nil {
			return err
		}
		defer os.RemoveAll(*storeDir)
	}
	otel.SetTextMapPropagator(propagation.TraceContext{})

	ports := stack.FixedPorts
	if *randomPorts {
		ports = stack.Ports{}
	}
	s, err := stack.Start(ctx, stack.Options{StoreDir: *storeDir, Ports: ports, LogWriter: os.Stderr, LogLevel: level})
	if err != nil {
		return err
	}
	tokenNote := "not written anywhere"
	if *tokenFile != "" {
		if err := writeToken(*tokenFile, s.AdminToken); err != nil {
			stop()
			return errors.Join(err, s.Wait())
		}
		tokenNote = "written to " + *tokenFile + ", where orgsyncctl finds it"
	}
	fmt.Fprintf(stdout, `orgsync is running locally (Ctrl-C stops it):
  NATS JetStream   nats://%s   (store %s)
  Graph emulator   %s   (stats: http://%s%s)
  hr-ingest        webhooks: %s
                   health http://%s/readyz   gRPC %s
  org-model        gRPC %s   health http://%s/readyz
  entra-writer     gRPC %s   health http://%s/readyz   admin http://%s/v1/dead-letters
  webhook secret   %s   (source %q)
  admin token      %s
                   (%s; send it as "Authorization: Bearer …" to org-model's gRPC and entra-writer's admin port)
`,
		s.NATS.Addr(), *storeDir,
		s.EmulatorURL, s.EmulatorAddr(), emulator.StatsPath,
		s.WebhookURL(), s.HRIngest.HTTPAddr(), s.HRIngest.GRPCAddr(),
		s.OrgModel.GRPCAddr(), s.OrgModel.HTTPAddr(),
		s.EntraWriter.GRPCAddr(), s.EntraWriter.HTTPAddr(), s.EntraWriter.AdminAddr(),
		stack.DevSecret, stack.Source, s.AdminToken, tokenNote)

	if *sample != "" {
		if err := load(ctx, s, *sample, stdout); err != nil {
			stop()
			return fmt.Errorf("loading %s: %w (stack stopped: %v)", *sample, err, s.Wait())
		}
	}
	fmt.Fprintln(stdout, `Try: deploy/local/send-webhook.sh deploy/local/sample/hire-jane.json
Then: curl -s "http://127.0.0.1:18080/v1.0/users?\$filter=employeeId%20eq%20'E1104'&\$select=id,displayName,userPrincipalName,employeeId,department"`)
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping…")
	return s.Wait()
}

// writeToken writes the dev token where orgsyncctl looks, readable by the user only. It replaces
// the token of an earlier run, which died with that run.
func writeToken(path, token string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("token file directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the token file: %w", err)
	}
	return nil
}

// load posts every event of a JSON array file to hr-ingest as its own signed webhook.
func load(ctx context.Context, s *stack.Stack, path string, stdout io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var events []json.RawMessage
	if err := json.Unmarshal(data, &events); err != nil {
		return fmt.Errorf("want a JSON array of events: %w", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for i, event := range events {
		id := fmt.Sprintf("sample-%s-%d", filepath.Base(path), i)
		resp, body, err := stack.Post(ctx, client, s.WebhookURL(), id, event)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("event %d: %s: %s", i, resp.Status, body)
		}
	}
	fmt.Fprintf(stdout, "loaded %d sample events from %s\n", len(events), path)
	return nil
}
