// Package upload sends a CSV export to hr-ingest's snapshot endpoint, the client side of
// `hr-ingest snapshot-upload`. It retries the same bytes on 429 and 503, honouring Retry-After, so
// a snapshot is stored once however often the upload is retried: every try of one call carries
// the same Idempotency-Key. A new call is a new snapshot, applied even when the file is the same.
package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options say where and how to upload.
type Options struct {
	// BaseURL is hr-ingest's address, e.g. http://hr-ingest:8080.
	BaseURL string
	Source  string
	Token   string
	// Attempts bounds the tries on 429 and 503; default 5.
	Attempts int
	// MaxWait caps one Retry-After wait; default 1m.
	MaxWait time.Duration
	// IdempotencyKey names this upload so that its retries are one snapshot; default a random
	// key per call of CSV.
	IdempotencyKey string
	Client         *http.Client
}

// Result is hr-ingest's answer to an accepted snapshot.
type Result struct {
	SnapshotID  string `json:"snapshotId"`
	RecordCount int    `json:"recordCount"`
	Duplicates  int    `json:"duplicates"`
}

// Error is a rejection, carrying the problem document hr-ingest answered with.
type Error struct {
	Status int
	Body   string
}

func (e *Error) Error() string { return fmt.Sprintf("hr-ingest answered %d: %s", e.Status, e.Body) }

// CSV uploads body and returns once hr-ingest has accepted it, or with the last error.
func CSV(ctx context.Context, body []byte, opts Options) (Result, error) {
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = time.Minute
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 5 * time.Minute}
	}
	if opts.IdempotencyKey == "" {
		random := make([]byte, 16)
		if _, err := rand.Read(random); err != nil {
			return Result{}, fmt.Errorf("idempotency key: %w", err)
		}
		opts.IdempotencyKey = hex.EncodeToString(random)
	}
	endpoint := strings.TrimSuffix(opts.BaseURL, "/") + "/v1/sources/" + url.PathEscape(opts.Source) + "/snapshots"
	var lastErr error
	for attempt := 1; attempt <= opts.Attempts; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return Result{}, err
		}
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Authorization", "Bearer "+opts.Token)
		req.Header.Set("Idempotency-Key", opts.IdempotencyKey)
		resp, err := opts.Client.Do(req)
		wait := time.Second << (attempt - 1)
		if err != nil {
			lastErr = err
		} else {
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusAccepted:
				var result Result
				if err := json.Unmarshal(answer, &result); err != nil {
					return Result{}, fmt.Errorf("reading hr-ingest's answer: %w", err)
				}
				return result, nil
			case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusConflict:
				// 409: another snapshot of the source is being published (perhaps this upload's
				// own earlier try, whose answer was lost); wait for it to end.
				lastErr = &Error{Status: resp.StatusCode, Body: strings.TrimSpace(string(answer))}
				if seconds, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && seconds >= 0 {
					wait = time.Duration(seconds) * time.Second
				}
			default:
				return Result{}, &Error{Status: resp.StatusCode, Body: strings.TrimSpace(string(answer))}
			}
		}
		if attempt == opts.Attempts {
			break
		}
		timer := time.NewTimer(min(wait, opts.MaxWait))
		select {
		case <-ctx.Done():
			timer.Stop()
			return Result{}, ctx.Err()
		case <-timer.C:
		}
	}
	return Result{}, fmt.Errorf("giving up after %d attempts: %w", opts.Attempts, lastErr)
}
