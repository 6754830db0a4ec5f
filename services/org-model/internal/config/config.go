// Package config is org-model's configuration: a typed struct with sensible zero values, read
// from the environment by FromEnv (errors name the variable, or the policy file's line), checked
// by Validate.
package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/server"
	"github.com/orgsync/orgsync/pkg/stream"
	"github.com/orgsync/orgsync/services/org-model/internal/clock"
	"github.com/orgsync/orgsync/services/org-model/internal/policy"
	"github.com/orgsync/orgsync/services/org-model/internal/query"
)

// Name is the service name in health checks, telemetry and logs.
const Name = "org-model"

// Policy is the policy in force without a policy file, from the environment.
type Policy struct {
	// UPNDomain is the domain of generated userPrincipalNames, e.g. "corp.example.com"; it is
	// also used when the policy file names no upnDomains.
	UPNDomain string
	// GroupNamePrefix is put before a unit's name to name its group ("Org - " when empty and no
	// policy file is given).
	GroupNamePrefix string
}

// Config is org-model's configuration. Zero values are sensible: no policy file means the
// built-in policy over Policy, no clock means the system clock.
type Config struct {
	NATSURL string
	// NATS is how the service authenticates to NATS (NATS_CREDS_FILE, …) and whether it creates the streams.
	NATS    stream.ClientConfig
	Server  server.Config
	Streams stream.Config
	Policy  Policy
	// PolicyFile is the policy file (ORGSYNC_CONFIG); empty uses the built-in policy.
	PolicyFile string
	// Clock drives the lifecycle scheduler; nil is the system clock.
	Clock clock.Clock
	// PlanTimeout bounds each Plan request (PLAN_TIMEOUT); zero is query.DefaultPlanTimeout.
	PlanTimeout time.Duration
	// Checkpoint says how often the model's state is saved for a bounded replay at start; the
	// zero value saves none.
	Checkpoint Checkpoint
}

// FromEnv reads NATS_URL, HTTP_ADDR (default :8081), GRPC_ADDR (default :9091),
// ORGSYNC_CONFIG (the policy file), UPN_DOMAIN (required without a policy file naming
// upnDomains), GROUP_NAME_PREFIX (default "Org - ", used without a policy file), PLAN_TIMEOUT
// (default 30s, how long one Plan request may run), CHECKPOINT_EVENTS (default 50000; 0 turns
// checkpoints off) and CHECKPOINT_INTERVAL (default 10m), how often the model's state is saved so
// that a start replays only the HR events after it, and who may call the query API:
// ORGSYNC_AUTH_* and GRPC_TLS_* (server.ConfigFromEnv, rules in GRPCRules).
func FromEnv(env *envconfig.Env) (Config, error) {
	cfg := Config{
		NATSURL:    env.String("NATS_URL", nats.DefaultURL),
		NATS:       stream.ClientConfigFromEnv(env, true),
		Server:     server.ConfigFromEnv(Name, env, ":8081", ":9091"),
		Streams:    stream.ConfigFromEnv(env),
		PolicyFile: env.String("ORGSYNC_CONFIG", ""),
		Policy: Policy{
			UPNDomain:       strings.ToLower(env.String("UPN_DOMAIN", "")),
			GroupNamePrefix: env.String("GROUP_NAME_PREFIX", "Org - "),
		},
		Checkpoint: Checkpoint{
			Events:   env.Int("CHECKPOINT_EVENTS", DefaultCheckpoint().Events),
			Interval: env.Duration("CHECKPOINT_INTERVAL", DefaultCheckpoint().Interval),
		},
	}
	if err := cfg.Checkpoint.validate(cfg.Streams.HRMaxAge); err != nil {
		env.Fail("CHECKPOINT_EVENTS", err)
	}
	if d := cfg.Policy.UPNDomain; d != "" && (strings.ContainsAny(d, "@ /") || !strings.Contains(d, ".")) {
		env.Fail("UPN_DOMAIN", fmt.Errorf("%q is not a domain name such as corp.example.com", d))
	}
	cfg.PlanTimeout = env.Duration("PLAN_TIMEOUT", query.DefaultPlanTimeout)
	if cfg.PlanTimeout <= 0 {
		env.Fail("PLAN_TIMEOUT", fmt.Errorf("%s is not a positive duration such as 30s", cfg.PlanTimeout))
	}
	if cfg.PolicyFile == "" && cfg.Policy.UPNDomain == "" {
		env.Fail("UPN_DOMAIN", errors.New("must be set when ORGSYNC_CONFIG is not"))
	}
	if err := env.Err(); err != nil {
		return cfg, err
	}
	// Load the policy now too, so a bad file stops the service before it connects anywhere.
	_, err := cfg.LoadPolicy()
	return cfg, err
}

// LoadPolicy loads the policy file of cfg, or builds the default policy from the environment.
func (cfg Config) LoadPolicy() (*policy.Policy, error) {
	if cfg.PolicyFile == "" {
		prefix := cfg.Policy.GroupNamePrefix
		if prefix == "" {
			prefix = "Org - "
		}
		return policy.Default(cfg.Policy.UPNDomain, prefix)
	}
	pol, err := policy.Load(cfg.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("ORGSYNC_CONFIG: %w", err)
	}
	if len(pol.UPNDomains) == 0 && cfg.Policy.UPNDomain != "" {
		pol.UPNDomains = []string{cfg.Policy.UPNDomain}
	}
	return pol, nil
}

// Validate checks what a Config built without FromEnv may get wrong: checkpoints, when on,
// must cover every HR event before HR's retention expires it.
func (cfg Config) Validate() error {
	if cfg.Checkpoint.Events > 0 {
		return cfg.Checkpoint.validate(cfg.Streams.HRMaxAge)
	}
	return nil
}

// Checkpoint says how often org-model writes its checkpoint of the model.
type Checkpoint struct {
	// Events: a checkpoint is written after this many HR events since the last one; 0 writes
	// none (every start replays HR in full).
	Events int
	// Interval: a checkpoint is written this long after the last one when any HR event came since.
	Interval time.Duration
}

// DefaultCheckpoint writes a checkpoint every 50,000 events or 10 minutes.
func DefaultCheckpoint() Checkpoint {
	return Checkpoint{Events: 50_000, Interval: 10 * time.Minute}
}

// validate checks the settings against HR's retention: events must not expire before a
// checkpoint covers them.
func (c Checkpoint) validate(hrRetention time.Duration) error {
	switch {
	case c.Events < 0:
		return errors.New("CHECKPOINT_EVENTS must be 0 (no checkpoints) or more")
	case c.Events > 0 && c.Interval <= 0:
		return errors.New("CHECKPOINT_INTERVAL must be a positive duration such as 10m")
	case hrRetention > 0 && c.Events == 0:
		return errors.New("HR_RETENTION is finite but CHECKPOINT_EVENTS is 0: workers HR has not mentioned within the retention would be forgotten")
	case hrRetention > 0 && c.Interval*2 > hrRetention:
		return fmt.Errorf("CHECKPOINT_INTERVAL %s must be at most half of HR_RETENTION %s, so every event is in a checkpoint before it expires", c.Interval, hrRetention)
	}
	return nil
}
