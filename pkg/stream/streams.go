// Package stream is orgsync's shared JetStream layer: the streams HR, DIRECTORY, RESULTS and AUDIT,
// the subjects on them, and publishing and consuming protobuf messages with the W3C trace context
// carried in NATS headers, so that one trace runs from an HR webhook to a directory write.
//
// It is meant for orgsync's own services, not for outside use.
package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgsync/orgsync/pkg/envconfig"
)

// Stream names.
const (
	// HR holds normalised HR events as received, for replay and audit.
	HR = "HR"
	// Directory holds the desired state: the newest message of each subject is the whole desired state
	// of one directory object.
	Directory = "DIRECTORY"
	// Results holds the newest writer result of each directory object.
	Results = "RESULTS"
	// Audit holds every write a writer made, append-only.
	Audit = "AUDIT"
	// DeadLetter holds, per object, the desired state a writer could not apply for a permanent
	// reason, until it is replayed after a fix or made obsolete by a newer desired state.
	DeadLetter = "DEADLETTER"
)

// Config says how orgsync's streams are created.
type Config struct {
	// Replicas is the number of stream replicas: 1 for tests and one-node setups, 3 in production.
	Replicas int
	// Storage is file storage unless a test asks for memory.
	Storage jetstream.StorageType
	// HRMaxAge is how long HR events are kept for replay and audit; 0 keeps them for ever.
	HRMaxAge time.Duration
	// AuditMaxAge is how long audit records are kept; 0 keeps them for ever.
	AuditMaxAge time.Duration
	// Duplicates is the window within which a publish with a known Nats-Msg-Id is stored once.
	Duplicates time.Duration
}

// DefaultConfig is a one-replica, file-backed setup keeping HR events for ever (org-model rebuilds
// its state by replaying them) and audit records for 90 days, and deduplicating retried HR
// requests for 2 hours: the window is for a sender's retries, not for content, so that a state
// that comes back later (a leave, its rescission, the leave again) is stored and applied.
func DefaultConfig() Config {
	return Config{
		Replicas:    1,
		Storage:     jetstream.FileStorage,
		HRMaxAge:    0,
		AuditMaxAge: 90 * 24 * time.Hour,
		Duplicates:  2 * time.Hour,
	}
}

// StreamConfigs returns the configuration of every orgsync stream.
func StreamConfigs(cfg Config) []jetstream.StreamConfig {
	replicas := max(cfg.Replicas, 1)
	return []jetstream.StreamConfig{
		{
			Name:        HR,
			Description: "Normalised HR events as received (hr.<source>.worker|unit|snapshot.<id>).",
			Subjects:    []string{"hr.>"},
			Storage:     cfg.Storage,
			Replicas:    replicas,
			MaxAge:      cfg.HRMaxAge,
			Duplicates:  cfg.Duplicates,
		},
		{
			Name:              Directory,
			Description:       "Desired directory state, one subject per object, newest only (dir.<target>.<kind>.<key>).",
			Subjects:          []string{"dir.>"},
			Storage:           cfg.Storage,
			Replicas:          replicas,
			MaxMsgsPerSubject: 1,
			Duplicates:        2 * time.Minute,
		},
		{
			Name:              Results,
			Description:       "Newest writer result per directory object (results.<target>.<kind>.<key>).",
			Subjects:          []string{"results.>"},
			Storage:           cfg.Storage,
			Replicas:          replicas,
			MaxMsgsPerSubject: 1,
			Duplicates:        2 * time.Minute,
		},
		{
			Name:              DeadLetter,
			Description:       "Desired states a writer could not apply for a permanent reason (dead.<target>.<kind>.<key>), newest per object.",
			Subjects:          []string{"dead.>"},
			Storage:           cfg.Storage,
			Replicas:          replicas,
			MaxMsgsPerSubject: 1,
			Duplicates:        2 * time.Minute,
		},
		{
			Name:        Audit,
			Description: "Every directory write made, append-only (audit.<target>.<kind>.<key>).",
			Subjects:    []string{"audit.>"},
			Storage:     cfg.Storage,
			Replicas:    replicas,
			MaxAge:      cfg.AuditMaxAge,
			Duplicates:  2 * time.Minute,
		},
	}
}

// EnsureStreams creates orgsync's streams and the status and lease buckets, or updates them to
// cfg. Only their owner calls it (org-model unless NATS_MANAGE_STREAMS says otherwise, an init
// job, a test); it is idempotent.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	for _, sc := range StreamConfigs(cfg) {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	for _, kv := range []jetstream.KeyValueConfig{statusBucketConfig(cfg), leaseBucketConfig(cfg)} {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kv); err != nil {
			return fmt.Errorf("key-value bucket %s: %w", kv.Bucket, err)
		}
	}
	return nil
}

// ConfigFromEnv reads NATS_STREAM_REPLICAS, HR_RETENTION and AUDIT_RETENTION over DefaultConfig.
func ConfigFromEnv(env *envconfig.Env) Config {
	cfg := DefaultConfig()
	cfg.Replicas = env.Int("NATS_STREAM_REPLICAS", cfg.Replicas)
	if cfg.Replicas != 1 && cfg.Replicas != 3 && cfg.Replicas != 5 {
		env.Fail("NATS_STREAM_REPLICAS", fmt.Errorf("%d is not 1, 3 or 5", cfg.Replicas))
	}
	cfg.HRMaxAge = env.Duration("HR_RETENTION", cfg.HRMaxAge)
	cfg.AuditMaxAge = env.Duration("AUDIT_RETENTION", cfg.AuditMaxAge)
	return cfg
}
