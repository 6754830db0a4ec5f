// Command local runs the whole orgsync pipeline on one machine for development (`make run`):
// embedded JetStream, the Graph emulator, hr-ingest, org-model, entra-writer and the console
// (with a dev OIDC issuer where one signs in as a person of each role), loaded with a
// small sample company through hr-ingest's real webhook endpoint. When Samba is installed (and
// this runs as root, as Samba needs), it also provisions a Samba AD domain controller on loopback
// and starts ad-writer on it, so the company appears in Active Directory too; otherwise it says
// in one line why AD is skipped.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/auth"
	"github.com/orgsync/orgsync/pkg/logging"
	"github.com/orgsync/orgsync/pkg/sambadc"
	"github.com/orgsync/orgsync/services/graph-emulator/emulator"
)

// adPolicy is org-model's policy when ad-writer runs: the built-in one plus a mapping for AD.
//
//go:embed sample/policy-ad.yaml
var adPolicy []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orgsync local:", err)
		os.Exit(1)
	}
}

// run starts the stack, prints where it listens to stdout, loads the sample, then starts AD (a
// Samba DC and ad-writer) when it can, and serves until ctx ends. Entra is served while the DC is
// being provisioned: org-model publishes AD's desired state from the start, and ad-writer's
// durable consumer catches up once it runs.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("orgsync-local", flag.ContinueOnError)
	storeDir := flags.String("store", "", "JetStream store directory (default: a new temporary directory)")
	sample := flags.String("sample", "deploy/local/sample/company.json", "events to load at start; empty loads nothing")
	logLevel := flags.String("log-level", "warn", "service log level (debug, info, warn, error)")
	randomPorts := flags.Bool("random-ports", false, "listen on free ports instead of the fixed 1408x/1808x/1908x ones")
	withAD := flags.Bool("ad", true, "start a Samba AD DC and ad-writer when Samba is installed (false: Entra only)")
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
	opts := stack.Options{StoreDir: *storeDir, Ports: ports, LogWriter: os.Stderr, LogLevel: level, Console: true}
	sambaScript, adSkipped := "", errors.New("-ad=false")
	if *withAD {
		sambaScript, adSkipped = sambadc.Check(sambadc.Host{})
	}
	if adSkipped == nil {
		// Only a policy that maps AD makes org-model publish AD's desired state.
		opts.PolicyFile = filepath.Join(*storeDir, "policy-ad.yaml")
		if err := os.WriteFile(opts.PolicyFile, adPolicy, 0o600); err != nil {
			return fmt.Errorf("writing the AD policy: %w", err)
		}
	}
	s, err := stack.Start(ctx, opts)
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
  console          %s   health http://%s/readyz
                   dev login at %s: %s
  webhook secret   %s   (source %q)
  admin token      %s
                   (%s; send it as "Authorization: Bearer …" to org-model's gRPC and the writers' admin ports)
`,
		s.NATS.Addr(), *storeDir,
		s.EmulatorURL, s.EmulatorAddr(), emulator.StatsPath,
		s.WebhookURL(), s.HRIngest.HTTPAddr(), s.HRIngest.GRPCAddr(),
		s.OrgModel.GRPCAddr(), s.OrgModel.HTTPAddr(),
		s.EntraWriter.GRPCAddr(), s.EntraWriter.HTTPAddr(), s.EntraWriter.AdminAddr(),
		s.ConsoleURL(), s.Console.HTTPAddr(), s.Issuer.URL(), devLogins(),
		stack.DevSecret, stack.Source, s.AdminToken, tokenNote)
	if adSkipped != nil {
		fmt.Fprintf(stdout, "AD skipped: %v; everything else runs, Entra only.\n", adSkipped)
	} else {
		fmt.Fprintln(stdout, "AD starting: provisioning a Samba AD DC takes about 10 s (longer while another user of the machine's DC holds it); Entra works meanwhile.")
	}

	if *sample != "" {
		if err := load(ctx, s, *sample, stdout); err != nil {
			stop()
			return fmt.Errorf("loading %s: %w (stack stopped: %v)", *sample, err, s.Wait())
		}
	}
	fmt.Fprintln(stdout, `Try: deploy/local/send-webhook.sh deploy/local/sample/hire-jane.json
Then: curl -s "http://127.0.0.1:18080/v1.0/users?\$filter=employeeId%20eq%20'E1104'&\$select=id,displayName,userPrincipalName,employeeId,department"`)
	var dc *sambadc.DC
	if adSkipped == nil {
		dc = startAD(ctx, s, sambaScript, stdout)
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping…")
	err = s.Wait()
	if dc != nil {
		err = errors.Join(err, dc.Close())
	}
	return err
}

// startAD starts the Samba DC, then ad-writer on it, and prints where they listen. It returns the
// DC, to be closed once the stack has stopped, or nil when AD could not be started, which it says
// on stdout: the rest of the stack keeps running.
func startAD(ctx context.Context, s *stack.Stack, sambaScript string, stdout io.Writer) *sambadc.DC {
	began := time.Now()
	skip := func(err error) {
		if ctx.Err() == nil {
			fmt.Fprintf(stdout, "AD skipped: %v; everything else runs, Entra only.\n", err)
		}
	}
	dc, err := sambadc.Start(ctx, sambadc.Options{Script: sambaScript, Waiting: func(lockFile string) {
		fmt.Fprintf(stdout, "AD waiting: the machine's one Samba DC (fixed ports) is in use, by ad-writer's tests or another make run; waiting for its lock %s\n", lockFile)
	}})
	if err != nil {
		skip(fmt.Errorf("starting the Samba AD DC: %w", err))
		return nil
	}
	password, err := dc.Password()
	if err == nil {
		err = s.StartADWriter(ctx, stack.AD{URL: dc.URL, CAFile: dc.CAFile, BaseDN: dc.BaseDN, BindDN: dc.BindDN, BindPassword: password})
	}
	if err != nil {
		skip(err)
		if closeErr := dc.Close(); closeErr != nil {
			fmt.Fprintf(stdout, "stopping the Samba AD DC: %v\n", closeErr)
		}
		return nil
	}
	ous := stack.NewADOUs(dc.BaseDN)
	fmt.Fprintf(stdout, `Active Directory is up (in %s; the machine's Samba DC is held until this stops):
  Samba AD DC      %s   base %s   (domain files in %s)
                   bind %s   password file %s   CA %s
  ad-writer        health http://%s/readyz   admin http://%s/v1/dead-letters   managing %s
Try: samba-tool user show jdoe -H %s   (Jane, once hired)
`,
		time.Since(began).Round(100*time.Millisecond),
		dc.URL, dc.BaseDN, dc.Dir,
		dc.BindDN, dc.PasswordFile, dc.CAFile,
		s.ADWriter.HTTPAddr(), s.ADWriter.AdminAddr(), ous.Root,
		filepath.Join(dc.Dir, "private", "sam.ldb"))
	return dc
}

// devLogins lists who can sign in to the console at the dev issuer: "vera.viewer (viewer), …".
func devLogins() string {
	var logins []string
	for _, user := range stack.DevUsers {
		roles := make([]string, len(user.Roles))
		for i, role := range user.Roles {
			roles[i] = string(role)
		}
		logins = append(logins, fmt.Sprintf("%s (%s)", user.Subject, strings.Join(roles, ", ")))
	}
	return "choose " + strings.Join(logins, ", ")
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
