package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/orgsync/orgsync/services/hr-ingest/webhook"
)

// Source is the canonical HR source the harness configures, and SecretText its webhook secret
// (for these runs only).
const (
	Source     = "synth"
	SecretText = "whsec_b3Jnc3luYy1zY2FsZS1oYXJuZXNzLXNlY3JldA=="
	UPNDomain  = "corp.example.test"
)

// PolicyYAML is org-model's policy for the runs: the default policy over UPNDomain, with the
// mass-change guard opened wide — thousands of leaves and moves within minutes are the point of
// a chaos run, and a held batch would (rightly) stop convergence.
const PolicyYAML = `upnDomains: ["` + UPNDomain + `"]
groups:
  unit:
    displayName: '"Org - " + unit.name'
guard:
  maxChanges: 1000000000
  maxShare: 1
`

// PipelineOptions say how to run the pipeline.
type PipelineOptions struct {
	// Dir holds the JetStream store, the policy file and the logs.
	Dir      string
	Binaries map[string]string
	GraphURL string
	// Writers is the number of entra-writer replicas (default 1).
	Writers int
	// RedisURL is given to the writers (their shared Graph write budget) when set.
	RedisURL string
	// WriterEnv is added to every writer's environment (e.g. GRAPH_WRITES_PER_WINDOW=0).
	WriterEnv []string
	// Policy is org-model's policy file (default PolicyYAML, which maps no AD).
	Policy string
	// ADWriters is the number of ad-writer replicas (default none); ADWriterEnv is their LDAP_*
	// and AD_* configuration. Their readiness needs the directory, so it must be up first.
	ADWriters   int
	ADWriterEnv []string
	LogLevel    string
}

// Pipeline is JetStream, hr-ingest, org-model, entra-writer replicas and ad-writer replicas, each
// its own process.
type Pipeline struct {
	NATS        *Proc
	NATSURL     string
	HRIngest    *Proc
	HRIngestURL string
	OrgModel    *Proc
	Writers     []*Proc
	ADWriters   []*Proc
	group       Group
}

// StartPipeline starts every process and waits until each is ready.
func StartPipeline(ctx context.Context, opts PipelineOptions) (*Pipeline, error) {
	if opts.Writers <= 0 {
		opts.Writers = 1
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	p := &Pipeline{}
	natsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	if p.NATS, err = NATSProc(opts.Dir, natsPort); err != nil {
		return nil, err
	}
	p.group.Add(p.NATS)
	p.NATSURL = fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	if err := p.NATS.Start(); err != nil {
		return nil, err
	}
	if err := WaitJetStream(ctx, p.NATSURL, 20*time.Second); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	policyPath := filepath.Join(opts.Dir, "policy.yaml")
	if opts.Policy == "" {
		opts.Policy = PolicyYAML
	}
	if err := os.WriteFile(policyPath, []byte(opts.Policy), 0o600); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	service := func(name, binary string, env ...string) (*Proc, string, error) {
		httpPort, err := FreePort()
		if err != nil {
			return nil, "", err
		}
		grpcPort, err := FreePort()
		if err != nil {
			return nil, "", err
		}
		httpAddr := "127.0.0.1:" + strconv.Itoa(httpPort)
		proc := p.group.Add(&Proc{
			Name: name, Path: opts.Binaries[binary],
			Env: append(Env("NATS_URL", p.NATSURL, "HTTP_ADDR", httpAddr, "GRPC_ADDR", "127.0.0.1:"+strconv.Itoa(grpcPort),
				"LOG_LEVEL", opts.LogLevel), env...),
			ReadyURL: "http://" + httpAddr + "/readyz",
			LogPath:  filepath.Join(opts.Dir, name+".log"),
		})
		return proc, "http://" + httpAddr, proc.Start()
	}
	var httpBase string
	if p.HRIngest, httpBase, err = service("hr-ingest", "hr-ingest", Env("HR_SOURCES", Source, "HR_SOURCE_"+strings.ToUpper(Source)+"_SECRET", SecretText,
		"MAX_BODY_BYTES", strconv.Itoa(8<<20))...); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	p.HRIngestURL = httpBase + "/v1/sources/" + Source + "/events"
	if p.OrgModel, _, err = service("org-model", "org-model", Env("ORGSYNC_CONFIG", policyPath)...); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	for i := range opts.Writers {
		adminPort, err := FreePort()
		if err != nil {
			return nil, errors.Join(err, p.Close())
		}
		// Each replica's admin routes (dead letters, drift) need a port of their own.
		env := append(Env("GRAPH_BASE_URL", opts.GraphURL, "GRAPH_AUTH", "none", "ADMIN_ADDR", "127.0.0.1:"+strconv.Itoa(adminPort)), opts.WriterEnv...)
		if opts.RedisURL != "" {
			env = append(env, "REDIS_URL="+opts.RedisURL)
		}
		writer, _, err := service(fmt.Sprintf("entra-writer-%d", i+1), "entra-writer", env...)
		if err != nil {
			return nil, errors.Join(err, p.Close())
		}
		p.Writers = append(p.Writers, writer)
	}
	for i := range opts.ADWriters {
		adminPort, err := FreePort()
		if err != nil {
			return nil, errors.Join(err, p.Close())
		}
		env := append(Env("ADMIN_ADDR", "127.0.0.1:"+strconv.Itoa(adminPort)), opts.ADWriterEnv...)
		writer, _, err := service(fmt.Sprintf("ad-writer-%d", i+1), "ad-writer", env...)
		if err != nil {
			return nil, errors.Join(err, p.Close())
		}
		p.ADWriters = append(p.ADWriters, writer)
	}
	if err := p.WaitReady(ctx, time.Minute); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	return p, nil
}

// Services are the orgsync services (not NATS).
func (p *Pipeline) Services() []*Proc {
	return append(append([]*Proc{p.HRIngest, p.OrgModel}, p.Writers...), p.ADWriters...)
}

// WaitReady starts what is not running and waits until every service is ready.
func (p *Pipeline) WaitReady(ctx context.Context, timeout time.Duration) error {
	if !p.NATS.Running() {
		if err := p.NATS.Start(); err != nil {
			return err
		}
	}
	if err := WaitJetStream(ctx, p.NATSURL, timeout); err != nil {
		return err
	}
	for _, s := range p.Services() {
		if !s.Running() {
			if err := s.Start(); err != nil {
				return err
			}
		}
	}
	for _, s := range p.Services() {
		if err := s.WaitReady(ctx, timeout); err != nil {
			return fmt.Errorf("%w\n%s", err, TailLog(s.LogPath, 5))
		}
	}
	return nil
}

// Close stops every process.
func (p *Pipeline) Close() error { return p.group.Close() }

// Sender posts signed canonical webhooks, retrying until hr-ingest accepts them. It is safe for
// concurrent use.
type Sender struct {
	// URL returns the webhook endpoint; it may change between attempts.
	URL    func() string
	Secret webhook.Secret
	Client *http.Client
}

// NewSender returns a Sender with the harness's secret.
func NewSender(url func() string) *Sender {
	secret, err := webhook.ParseSecret(SecretText)
	if err != nil {
		panic(err)
	}
	return &Sender{URL: url, Secret: secret, Client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

// ErrRejected is an answer that retrying cannot change (4xx other than 429).
var ErrRejected = errors.New("rejected")

// Send posts body under webhook id and retries refused or failed attempts (503, 429, 5xx,
// connection errors) with a fresh signature, until a 2xx answer or ctx ends. It returns the
// number of attempts.
func (s *Sender) Send(ctx context.Context, id string, body []byte) (int, error) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		status, answer, err := s.post(ctx, id, body)
		switch {
		case err == nil && status/100 == 2:
			return attempt, nil
		case err == nil && status/100 == 4 && status != http.StatusTooManyRequests:
			return attempt, fmt.Errorf("%w: webhook %s: status %d: %s", ErrRejected, id, status, answer)
		}
		select {
		case <-ctx.Done():
			return attempt, fmt.Errorf("webhook %s not accepted (last status %d, error %v): %w", id, status, err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (s *Sender) post(ctx context.Context, id string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL(), bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	webhook.SetHeaders(req.Header, s.Secret, id, time.Now(), body)
	resp, err := s.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	return resp.StatusCode, string(answer), nil
}
