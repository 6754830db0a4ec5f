package stream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// StatusBucket is the key-value bucket where every running service instance reports its status
// (orgsync.v1.ServiceStatus) under "<service>.<instance>". Entries expire after StatusTTL, so an
// instance that stopped reporting drops out.
const StatusBucket = "ORGSYNC_STATUS"

// StatusTTL is how long a reported status stays without being renewed.
const StatusTTL = 30 * time.Second

// Instance names this process for status reports: the host name (a pod's name) and the pid.
func Instance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

func statusBucketConfig(cfg Config) jetstream.KeyValueConfig {
	return expiringBucket(cfg, StatusBucket, "orgsync: each running service instance's status, renewed every few seconds", StatusTTL)
}

// LeaseBucket is the key-value bucket where each writer's active replica holds its lease, under
// the writer's service name: one replica of a writer applies desired states at a time (see
// converge.Lease). An entry not renewed for LeaseTTL expires, and another replica takes over.
const LeaseBucket = "ORGSYNC_LEASES"

// LeaseTTL is how long a lease stays without being renewed: the time a standby replica waits
// before taking over from an active one that died without letting go.
const LeaseTTL = 15 * time.Second

func leaseBucketConfig(cfg Config) jetstream.KeyValueConfig {
	return expiringBucket(cfg, LeaseBucket, "orgsync: which replica of each writer is the active one, renewed every few seconds", LeaseTTL)
}

// expiringBucket is the configuration of a key-value bucket whose entries live for ttl unless
// renewed, keeping only the newest value of each key.
func expiringBucket(cfg Config, bucket, description string, ttl time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: bucket, Description: description, TTL: ttl, History: 1, Replicas: max(cfg.Replicas, 1)}
}

// ReportStatus puts the status status() returns into StatusBucket at once and then every interval
// (default 5s), until ctx ends; it blocks, and the caller owns its goroutine. A failed put is
// retried at the next tick: status reports are best effort and never stop a service. The bucket
// is created with the streams (EnsureStreams), so reporting needs no permission to create it.
func ReportStatus(ctx context.Context, js jetstream.JetStream, interval time.Duration, status func(context.Context) *orgsyncv1.ServiceStatus) error {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var kv jetstream.KeyValue
	for {
		if kv == nil {
			kv, _ = js.KeyValue(ctx, StatusBucket)
		}
		if kv != nil {
			s := status(ctx)
			s.UpdatedAt = timestamppb.Now()
			if data, err := proto.Marshal(s); err == nil {
				_, _ = kv.Put(ctx, subject.Token(s.GetService())+"."+subject.Token(s.GetInstance()), data)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// ReadStatuses returns every status in StatusBucket, by key order (service, then instance).
func ReadStatuses(ctx context.Context, js jetstream.JetStream) ([]*orgsyncv1.ServiceStatus, error) {
	kv, err := js.KeyValue(ctx, StatusBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", StatusBucket, err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", StatusBucket, err)
	}
	var names []string
	for key := range keys.Keys() {
		names = append(names, key)
	}
	var statuses []*orgsyncv1.ServiceStatus
	slices.Sort(names)
	for _, key := range names {
		entry, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s %s: %w", StatusBucket, key, err)
		}
		var s orgsyncv1.ServiceStatus
		if err := proto.Unmarshal(entry.Value(), &s); err != nil {
			continue // not a status this version understands
		}
		statuses = append(statuses, &s)
	}
	return statuses, nil
}

// ReadyStatus is the status of a service that only reports its readiness: ready when check passes.
func ReadyStatus(service, instance string, check func(context.Context) error) func(context.Context) *orgsyncv1.ServiceStatus {
	return func(ctx context.Context) *orgsyncv1.ServiceStatus {
		s := &orgsyncv1.ServiceStatus{Service: service, Instance: instance, State: "running", Ready: true}
		checkCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := check(checkCtx); err != nil {
			s.Ready, s.NotReadyReason = false, err.Error()
		}
		return s
	}
}
