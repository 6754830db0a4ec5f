// Package poll reads HR sources that have no webhooks (source kind poll): an HTTP endpoint
// answering JSON or CSV records is asked, every interval, for the records changed since a
// cursor, page by page; every record goes through hr-ingest's own mapping and normaliser
// (snapshot.Row), is named by its worker id and modified time, and is published through the
// ingest pipeline; the cursor, kept in a JetStream key-value bucket, advances only once every
// event of a page was acknowledged. On a schedule the whole endpoint is read (a full pull) and
// published as a snapshot of the source, so that org-model learns who is gone. One replica
// polls a source at a time (a lease); the others stand by.
//
// This file reads a page; client.go asks for one; poller.go runs the loop; state.go keeps the
// cursor.
package poll

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/snapshot"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// Page is one answer of a polled endpoint, read.
type Page struct {
	// Records are the page's records, in the order the endpoint answered them.
	Records []Record
	// Next is the next page's URL (paging mode next); "" on the last page.
	Next string
}

// Record is one polled record mapped to a worker, or the reason it could not be.
type Record struct {
	// Event is the worker event (no id, source or receive time yet), nil when Invalid is set.
	Event *orgsyncv1.HREvent
	// WorkerID is the record's worker id ("" when it has none).
	WorkerID string
	// Modified is when the record last changed (the source's modified field); zero without one.
	Modified time.Time
	// Invalid says why the record cannot be published: the pointers of its invalid fields
	// (never their values, which may be PII).
	Invalid error
}

// Version is what tells two states of a record apart: its modified time, or, for a record
// without one, a hash of its event.
func (r Record) Version() string {
	if !r.Modified.IsZero() {
		return r.Modified.UTC().Format(time.RFC3339Nano)
	}
	return contentHash(r.Event)
}

// maxPageBytes bounds one answer (AFAS's own limit on a call is 75 MB).
const maxPageBytes = 80 << 20

// ParsePage reads one answer of cfg's endpoint (cfg with its defaults filled in): its records,
// each mapped through the source's fields (snapshot.Row) in loc, and the next page's URL. A
// body that is not in its format is a *normalize.SyntaxError; a record that cannot be mapped
// is returned with its reason (Record.Invalid), the others are unaffected.
func ParsePage(cfg source.Poll, loc *time.Location, body []byte) (Page, error) {
	var header []string
	var rows [][]string
	var page Page
	var err error
	pointer := "/" + normalize.EscapePointer(cfg.Records)
	if cfg.Records == "" {
		pointer = ""
	}
	switch cfg.Format {
	case "csv":
		header, rows, err = csvTable(body)
		pointer = "/rows"
	default:
		header, rows, page.Next, err = jsonTable(body, cfg)
	}
	if err != nil {
		return Page{}, err
	}
	modifiedColumn := slices.Index(header, cfg.ModifiedField)
	opts := snapshot.Options{Mapping: cfg.Fields, Location: loc}
	for i, values := range rows {
		at := pointer + "/" + strconv.Itoa(i)
		page.Records = append(page.Records, record(header, values, opts, cfg.ModifiedField, modifiedColumn, loc, at))
	}
	return page, nil
}

func record(header, values []string, opts snapshot.Options, modifiedField string, modifiedColumn int, loc *time.Location, at string) Record {
	var rec Record
	if i := slices.Index(header, opts.Mapping.Column("workerId")); i >= 0 {
		rec.WorkerID = strings.TrimSpace(values[i])
	}
	if modifiedColumn >= 0 {
		text := strings.TrimSpace(values[modifiedColumn])
		modified, err := normalize.Time(text, loc)
		if text == "" || err != nil {
			rec.Invalid = &InvalidRecordError{Fields: &normalize.InvalidError{Fields: []normalize.FieldError{{
				Pointer: at + "/" + normalize.EscapePointer(modifiedField), Detail: "required: an ISO 8601 date-time (the modified field)"}}}}
			return rec
		}
		rec.Modified = modified
		// The modified time is the event's occurred_at, not a custom attribute of the worker.
		header = slices.Delete(slices.Clone(header), modifiedColumn, modifiedColumn+1)
		values = slices.Delete(slices.Clone(values), modifiedColumn, modifiedColumn+1)
	}
	worker, err := snapshot.Row(header, values, opts, at)
	if invalid, ok := errors.AsType[*normalize.InvalidError](err); ok {
		rec.Invalid = &InvalidRecordError{Fields: invalid}
		return rec
	}
	if err != nil {
		rec.Invalid = err
		return rec
	}
	rec.Event = &orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_Worker{Worker: worker}}
	if !rec.Modified.IsZero() {
		rec.Event.OccurredAt = timestamppb.New(rec.Modified)
	}
	return rec
}

// InvalidRecordError is a record that cannot be mapped. Its text names the invalid fields by
// their pointers only (the details may quote the values, which may be PII: it goes to logs and
// the status); the details are kept for the dry run's answer (Unwrap).
type InvalidRecordError struct {
	Fields *normalize.InvalidError
}

func (e *InvalidRecordError) Error() string {
	pointers := make([]string, len(e.Fields.Fields))
	for i, f := range e.Fields.Fields {
		pointers[i] = f.Pointer
	}
	return "invalid fields: " + strings.Join(pointers, ", ")
}

func (e *InvalidRecordError) Unwrap() error { return e.Fields }

// jsonTable reads a JSON answer's records (objects) as a table: the header is every field name
// that occurs (a record without a field has it empty), values as text.
func jsonTable(body []byte, cfg source.Poll) (header []string, rows [][]string, next string, err error) {
	var list []json.RawMessage
	if cfg.Records == "" {
		err = json.Unmarshal(body, &list)
	} else {
		var answer map[string]json.RawMessage
		if err = json.Unmarshal(body, &answer); err == nil {
			raw, ok := answer[cfg.Records]
			switch {
			case !ok:
				err = fmt.Errorf("no member %q holding the records", cfg.Records)
			case string(raw) != "null":
				err = json.Unmarshal(raw, &list)
			}
			if cfg.Paging.Mode == source.PagingNext && err == nil {
				if raw, ok := answer[cfg.Paging.Next]; ok && string(raw) != "null" {
					if json.Unmarshal(raw, &next) != nil {
						err = fmt.Errorf("member %q is not a URL", cfg.Paging.Next)
					}
				}
			}
		}
	}
	if err != nil {
		return nil, nil, "", &normalize.SyntaxError{Format: "JSON", Err: err}
	}
	objects := make([]map[string]json.RawMessage, len(list))
	names := map[string]bool{}
	for i, raw := range list {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&objects[i]); err != nil || objects[i] == nil {
			return nil, nil, "", &normalize.SyntaxError{Format: "JSON", Err: fmt.Errorf("record %d is not an object", i)}
		}
		for name := range objects[i] {
			names[name] = true
		}
	}
	header = slices.Sorted(maps.Keys(names))
	for _, object := range objects {
		values := make([]string, len(header))
		for j, name := range header {
			values[j] = text(object[name])
		}
		rows = append(rows, values)
	}
	return header, rows, next, nil
}

// text is a JSON value as text: a string as is, a number or boolean as written, null or a
// missing value as "", an object or array as its JSON.
func text(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// csvTable reads a CSV answer: a header row, then records.
func csvTable(body []byte) (header []string, rows [][]string, err error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\uFEFF"))))
	header, err = r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, nil // an empty answer: no changes
	}
	if err != nil {
		return nil, nil, &normalize.SyntaxError{Format: "CSV", Err: err}
	}
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
	for {
		values, err := r.Read()
		if errors.Is(err, io.EOF) {
			return header, rows, nil
		}
		if err != nil {
			return nil, nil, &normalize.SyntaxError{Format: "CSV", Err: err}
		}
		rows = append(rows, values)
	}
}

// contentHash names a worker event by its content.
func contentHash(event *orgsyncv1.HREvent) string {
	data, _ := proto.MarshalOptions{Deterministic: true}.Marshal(event.GetWorker())
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:12])
}
