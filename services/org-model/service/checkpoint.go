package service

import "github.com/orgsync/orgsync/services/org-model/internal/checkpoint"

// CheckpointBucket is the JetStream object store that keeps org-model's checkpoint.
const CheckpointBucket = checkpoint.Bucket
