package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/subject"
)

// ErrStreamsMissing is returned, joined with the context's error, when a service that does not
// manage the streams gives up waiting for them.
var ErrStreamsMissing = errors.New("orgsync's streams do not exist yet (they are created by the service with NATS_MANAGE_STREAMS=true, org-model by default)")

// ClientConfig says how a service authenticates to NATS, whether it uses TLS, and whether it
// creates orgsync's streams. The zero value connects without credentials and creates the streams,
// as tests and the open embedded server of `make run` expect.
type ClientConfig struct {
	// CredsFile is a NATS .creds file (user JWT and nkey seed), NATS_CREDS_FILE.
	CredsFile string
	// NKeySeedFile holds a user nkey seed ("SU…"), NATS_NKEY_SEED_FILE.
	NKeySeedFile string
	// User and PasswordFile authenticate with a user name and a password read from a file,
	// NATS_USER and NATS_PASSWORD_FILE.
	User         string
	PasswordFile string
	// CAFile verifies the server's certificate, NATS_CA_FILE.
	CAFile string
	// CertFile and KeyFile are a client certificate for mutual TLS, NATS_CERT_FILE and NATS_KEY_FILE.
	CertFile string
	KeyFile  string
	// InboxPrefix is where request replies arrive; empty means "_INBOX.<service name>", so a NATS
	// user can be allowed to subscribe only to its own replies (NATS_INBOX_PREFIX).
	InboxPrefix string
	// WaitForStreams makes the service wait until the streams exist instead of creating them:
	// only one owner (org-model, or an init job) creates and updates them, and the other services
	// need no permission to. NATS_MANAGE_STREAMS=false sets it.
	WaitForStreams bool
}

// ClientConfigFromEnv reads NATS_CREDS_FILE, NATS_NKEY_SEED_FILE, NATS_USER, NATS_PASSWORD_FILE,
// NATS_CA_FILE, NATS_CERT_FILE, NATS_KEY_FILE, NATS_INBOX_PREFIX and NATS_MANAGE_STREAMS
// (default manageStreams: true for org-model, false for the others), and records what is wrong
// with them in env.
func ClientConfigFromEnv(env *envconfig.Env, manageStreams bool) ClientConfig {
	cfg := ClientConfig{
		CredsFile:      env.String("NATS_CREDS_FILE", ""),
		NKeySeedFile:   env.String("NATS_NKEY_SEED_FILE", ""),
		User:           env.String("NATS_USER", ""),
		PasswordFile:   env.String("NATS_PASSWORD_FILE", ""),
		CAFile:         env.String("NATS_CA_FILE", ""),
		CertFile:       env.String("NATS_CERT_FILE", ""),
		KeyFile:        env.String("NATS_KEY_FILE", ""),
		InboxPrefix:    env.String("NATS_INBOX_PREFIX", ""),
		WaitForStreams: !env.Bool("NATS_MANAGE_STREAMS", manageStreams),
	}
	for _, problem := range cfg.problems() {
		env.Fail(problem.variable, problem.err)
	}
	return cfg
}

type configProblem struct {
	variable string
	err      error
}

// Validate reports every problem of cfg, each naming its environment variable: a file that
// cannot be read, a half-given pair, more than one way to authenticate.
func (c ClientConfig) Validate() error {
	var errs []error
	for _, problem := range c.problems() {
		errs = append(errs, fmt.Errorf("%s: %w", problem.variable, problem.err))
	}
	return errors.Join(errs...)
}

func (c ClientConfig) problems() []configProblem {
	var problems []configProblem
	fail := func(variable string, err error) { problems = append(problems, configProblem{variable, err}) }
	readable := func(variable, path string) {
		if path == "" {
			return
		}
		f, err := os.Open(path)
		if err != nil {
			var pathErr *os.PathError
			if errors.As(err, &pathErr) {
				err = pathErr.Err
			}
			fail(variable, fmt.Errorf("reading %s: %w", path, err))
			return
		}
		_ = f.Close()
	}
	readable("NATS_CREDS_FILE", c.CredsFile)
	readable("NATS_PASSWORD_FILE", c.PasswordFile)
	readable("NATS_CA_FILE", c.CAFile)
	readable("NATS_CERT_FILE", c.CertFile)
	readable("NATS_KEY_FILE", c.KeyFile)
	if c.NKeySeedFile != "" {
		// Parse the seed now, so a wrong file stops the service at start; the seed itself never
		// appears in the error.
		if seed, err := os.ReadFile(c.NKeySeedFile); err != nil {
			var pathErr *os.PathError
			if errors.As(err, &pathErr) {
				err = pathErr.Err
			}
			fail("NATS_NKEY_SEED_FILE", fmt.Errorf("reading %s: %w", c.NKeySeedFile, err))
		} else if _, err := nkeys.ParseDecoratedNKey(seed); err != nil {
			fail("NATS_NKEY_SEED_FILE", fmt.Errorf("%s holds no nkey seed (a line starting with SU, as `nk -gen user` prints)", c.NKeySeedFile))
		}
	}
	if (c.User == "") != (c.PasswordFile == "") {
		fail("NATS_USER", errors.New("NATS_USER and NATS_PASSWORD_FILE go together: set both or neither"))
	}
	methods := 0
	for _, set := range []bool{c.CredsFile != "", c.NKeySeedFile != "", c.User != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		fail("NATS_CREDS_FILE", errors.New("set only one of NATS_CREDS_FILE, NATS_NKEY_SEED_FILE and NATS_USER"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		fail("NATS_CERT_FILE", errors.New("NATS_CERT_FILE and NATS_KEY_FILE go together: set both or neither"))
	}
	if p := c.InboxPrefix; p != "" && (strings.ContainsAny(p, "*> \t") || strings.HasSuffix(p, ".")) {
		fail("NATS_INBOX_PREFIX", fmt.Errorf("%q is not a subject prefix (no wildcards, no trailing dot)", p))
	}
	return problems
}

// options turns cfg into nats.go options for the service name.
func (c ClientConfig) options(name string) ([]nats.Option, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	prefix := c.InboxPrefix
	if prefix == "" {
		prefix = "_INBOX." + subject.Token(name)
	}
	opts := []nats.Option{nats.CustomInboxPrefix(prefix)}
	switch {
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED_FILE: %w", err)
		}
		opts = append(opts, opt)
	case c.User != "":
		user, passwordFile := c.User, c.PasswordFile
		// Read the password at every (re)connect, so a rotated Secret is picked up.
		opts = append(opts, nats.UserInfoHandler(func() (string, string) {
			password, err := os.ReadFile(passwordFile)
			if err != nil {
				return user, ""
			}
			return user, strings.TrimSpace(string(password))
		}))
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" {
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	return opts, nil
}

// RedactURL removes user names, passwords and tokens from a NATS URL or a comma-separated list of
// them, for logs and errors.
func RedactURL(servers string) string {
	parts := strings.Split(servers, ",")
	for i, part := range parts {
		part = strings.TrimSpace(part)
		u, err := url.Parse(part)
		switch {
		case err != nil && strings.Contains(part, "@"):
			parts[i] = "[unparsable URL with credentials]"
		case err != nil:
			parts[i] = part
		case u.User != nil:
			u.User = url.User("redacted")
			parts[i] = u.String()
		default:
			parts[i] = part
		}
	}
	return strings.Join(parts, ",")
}

// Connect connects to NATS at url as client name without credentials, reconnecting for ever
// after a loss, and ensures orgsync's streams exist; see ConnectWith.
func Connect(ctx context.Context, url, name string, cfg Config, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	return ConnectWith(ctx, url, name, ClientConfig{}, cfg, logger)
}

// ConnectWith connects to NATS at url as client name with client's credentials and TLS,
// reconnecting for ever after a loss. Unless client.WaitForStreams, it creates orgsync's streams
// or updates them to cfg; otherwise it waits, with backoff, until they exist. Either way it
// waits for the server until ctx ends. The URL appears in logs and errors only without its
// credentials.
func ConnectWith(ctx context.Context, url, name string, client ClientConfig, cfg Config, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	redacted := RedactURL(url)
	opts, err := client.options(name)
	if err != nil {
		return nil, nil, fmt.Errorf("NATS client configuration: %w", err)
	}
	opts = append(opts,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("NATS disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logger.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			// Permission violations arrive here, not at the call that caused them: log them, or a
			// missing permission looks like a timeout.
			logger.Error("NATS error", "error", err)
		}),
	)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to NATS at %s: %w", redacted, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("JetStream: %w", err)
	}
	prepare, what := func() error { return EnsureStreams(ctx, js, cfg) }, "creating the streams"
	if client.WaitForStreams {
		prepare, what = func() error { return streamsExist(ctx, js) }, "waiting for the streams"
	}
	wait, logged := 250*time.Millisecond, false
	for {
		err = prepare()
		if err == nil {
			return nc, js, nil
		}
		// Log once: a service started before the owner of the streams waits quietly.
		if !logged {
			logger.Warn("JetStream not ready; retrying", "url", redacted, "step", what, "error", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, nil, fmt.Errorf("JetStream at %s, %s: %w", redacted, what, errors.Join(err, ctx.Err()))
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// streamsExist checks that every orgsync stream and the status and lease buckets exist, asking only for
// their information, which is all a service that does not manage them may do.
func streamsExist(ctx context.Context, js jetstream.JetStream) error {
	names := []string{"KV_" + StatusBucket, "KV_" + LeaseBucket}
	for _, sc := range StreamConfigs(DefaultConfig()) {
		names = append(names, sc.Name)
	}
	for _, name := range names {
		if _, err := js.Stream(ctx, name); err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("stream %s: %w", name, ErrStreamsMissing)
			}
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return nil
}

// ReadyCheck reports whether the connection is up and JetStream answers.
func ReadyCheck(nc *nats.Conn, js jetstream.JetStream) func(context.Context) error {
	return func(ctx context.Context) error {
		if status := nc.Status(); status != nats.CONNECTED {
			return fmt.Errorf("NATS connection is %s", status)
		}
		if _, err := js.AccountInfo(ctx); err != nil {
			return fmt.Errorf("JetStream: %w", err)
		}
		return nil
	}
}
