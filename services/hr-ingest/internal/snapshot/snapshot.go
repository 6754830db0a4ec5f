// Package snapshot reads a full HR export in CSV (RFC 4180, a header row first) into workers and
// turns them into a snapshot: a BEGIN marker, every worker, and an END marker with the record
// count, all under one snapshot id, so that org-model can tell who is no longer there.
//
// Which column holds which worker field is the source's column mapping (from the policy file);
// columns it does not name are kept as custom attributes under their header.
package snapshot

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
)

// Fields are the worker fields a column can be mapped to.
var Fields = []string{
	"workerId", "givenName", "familyName", "middleName", "preferredName", "displayName",
	"workEmail", "jobTitle", "orgUnitId", "department", "managerWorkerId", "location", "company",
	"costCenter", "division", "phoneNumber", "employmentType", "employmentStatus",
	"hireDate", "startDate", "endDate",
}

// Mapping maps a worker field (one of Fields) to the CSV header naming its column. A field not
// in the mapping is read from a column whose header is the field's own name, if there is one.
type Mapping map[string]string

// Options say how to read a file.
type Options struct {
	Mapping Mapping
	// Comma is the field delimiter; default ','.
	Comma rune
	// Location is the time zone dates and times are read in.
	Location *time.Location
}

// Parse reads every row into a worker. Problems are named by pointer "/rows/<line>/<header>"
// (line numbers as in the file, the header being line 1) and all reported at once
// (*normalize.InvalidError); nothing is returned then.
func Parse(body []byte, opts Options) ([]*orgsyncv1.Worker, error) {
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if !utf8.Valid(body) {
		return nil, &normalize.SyntaxError{Format: "CSV", Err: errors.New("not UTF-8")}
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\uFEFF"))))
	if opts.Comma != 0 {
		r.Comma = opts.Comma
	}
	r.FieldsPerRecord = -1 // a short row is reported with its line, not as a syntax error
	header, err := r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("no header row")
		}
		return nil, &normalize.SyntaxError{Format: "CSV", Err: err}
	}
	errs := &normalize.Errors{}
	columnOf, mapped := columns(errs, header, opts.Mapping)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	var workers []*orgsyncv1.Worker
	seen := map[string]int{}
	for {
		record, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &normalize.SyntaxError{Format: "CSV", Err: err}
		}
		line, _ := r.FieldPos(0)
		if len(record) == 1 && strings.TrimSpace(record[0]) == "" {
			continue // a blank line
		}
		at := "/rows/" + strconv.Itoa(line)
		if len(record) != len(header) {
			errs.Add(at, fmt.Sprintf("has %d fields; the header has %d", len(record), len(header)))
			continue
		}
		w := parseRow(errs, at, header, record, columnOf, mapped, opts.Location)
		if w.WorkerId != "" {
			if first, dup := seen[w.WorkerId]; dup {
				errs.Add(at+"/"+normalize.EscapePointer(header[columnOf["workerId"]]), fmt.Sprintf("worker %q is also on line %d", w.WorkerId, first))
			}
			seen[w.WorkerId] = line
		}
		workers = append(workers, w)
	}
	if len(workers) == 0 && len(errs.Fields) == 0 {
		errs.Add("/rows", "no rows: an empty snapshot would mean everyone left")
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return workers, nil
}

// columns finds, in header, the column of every worker field (columnOf) and the columns the
// mapping uses (mapped), recording what is missing or repeated at "/header".
func columns(errs *normalize.Errors, header []string, mapping Mapping) (columnOf map[string]int, mapped map[int]bool) {
	columnOf = map[string]int{} // worker field → column index
	headerIndex := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		if _, dup := headerIndex[h]; dup {
			errs.Add("/header/"+normalize.EscapePointer(h), "repeated column")
		}
		headerIndex[h] = i
	}
	for _, field := range Fields {
		name := field
		if m, ok := mapping[field]; ok {
			name = m
		}
		if i, ok := headerIndex[name]; ok {
			columnOf[field] = i
		} else if _, isMapped := mapping[field]; isMapped {
			errs.Add("/header", fmt.Sprintf("the mapping names column %q for %s, but the header has no such column", name, field))
		}
	}
	for _, required := range []string{"workerId", "familyName"} {
		if _, ok := columnOf[required]; !ok {
			errs.Add("/header", fmt.Sprintf("no column for %s (header %q, or map it in the source's csv columns)", required, mapping.header(required)))
		}
	}
	mapped = map[int]bool{}
	for _, i := range columnOf {
		mapped[i] = true
	}
	return columnOf, mapped
}

// Row reads one record of another tabular source (a polled JSON or CSV page), given as field
// names and their values, into a worker exactly as Parse reads a row of an export: the same
// mapping, normalisation and length limits. Problems are named at + "/" + the field's name
// and all reported at once (*normalize.InvalidError).
func Row(header, values []string, opts Options, at string) (*orgsyncv1.Worker, error) {
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	header = slices.Clone(header)
	errs := &normalize.Errors{}
	columnOf, mapped := columns(errs, header, opts.Mapping)
	if len(values) != len(header) {
		errs.Add(at, fmt.Sprintf("has %d fields; the header has %d", len(values), len(header)))
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	w := parseRow(errs, at, header, values, columnOf, mapped, opts.Location)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return w, nil
}

// Column names the column (or a polled record's field) a worker field is read from.
func (m Mapping) Column(field string) string { return m.header(field) }

func (m Mapping) header(field string) string {
	if h, ok := m[field]; ok {
		return h
	}
	return field
}

func parseRow(errs *normalize.Errors, at string, header, record []string, columnOf map[string]int, mapped map[int]bool, loc *time.Location) *orgsyncv1.Worker {
	get := func(field string) (string, string) {
		i, ok := columnOf[field]
		if !ok {
			return "", ""
		}
		return strings.TrimSpace(record[i]), at + "/" + normalize.EscapePointer(header[i])
	}
	id := func(field string, required bool) string {
		value, pointer := get(field)
		switch {
		case value == "" && required:
			errs.Add(pointer, "required")
		case value == "":
		default:
			if why := normalize.ValidID(value); why != "" {
				errs.Add(pointer, why)
				return ""
			}
		}
		return value
	}
	date := func(field string) *orgsyncv1.Date {
		value, pointer := get(field)
		d, err := normalize.Date(value, loc)
		if err != nil {
			errs.Add(pointer, err.Error())
		}
		return d
	}
	text := func(field string) string { value, _ := get(field); return value }
	w := &orgsyncv1.Worker{
		WorkerId: id("workerId", true),
		Name: &orgsyncv1.PersonName{
			GivenName: text("givenName"), FamilyName: text("familyName"), MiddleName: text("middleName"),
			PreferredName: text("preferredName"), DisplayName: text("displayName"),
		},
		WorkEmail: text("workEmail"), JobTitle: text("jobTitle"), OrgUnitId: id("orgUnitId", false),
		Department: text("department"), ManagerWorkerId: id("managerWorkerId", false),
		Location: text("location"), Company: text("company"), CostCenter: text("costCenter"),
		Division: text("division"), PhoneNumber: text("phoneNumber"),
		HireDate: date("hireDate"), StartDate: date("startDate"), EndDate: date("endDate"),
	}
	var err error
	value, pointer := get("employmentType")
	if w.EmploymentType, err = normalize.EmploymentType(value); err != nil {
		errs.Add(pointer, err.Error())
	}
	value, pointer = get("employmentStatus")
	if w.EmploymentStatus, err = normalize.EmploymentStatus(value); err != nil {
		errs.Add(pointer, err.Error())
	}
	if w.Name.GivenName == "" && w.Name.PreferredName == "" {
		if _, p := get("givenName"); p != "" {
			errs.Add(p, "required")
		} else {
			errs.Add(at+"/givenName", "required (no column for givenName or preferredName)")
		}
	}
	if _, p := get("familyName"); w.Name.FamilyName == "" {
		errs.Add(p, "required")
	}
	if w.ManagerWorkerId != "" && w.ManagerWorkerId == w.WorkerId {
		_, p := get("managerWorkerId")
		errs.Add(p, "a worker cannot be their own manager")
	}
	pointerOf := func(field string) string {
		if i, ok := columnOf[field]; ok {
			return "/" + normalize.EscapePointer(header[i])
		}
		return "/" + field
	}
	normalize.Worker(w, errs, at, normalize.WorkerFieldNames{
		WorkEmail: pointerOf("workEmail"), PhoneNumber: pointerOf("phoneNumber"), EndDate: pointerOf("endDate"),
	})
	normalize.CheckLengths(w, errs, func(field string) string { return at + pointerOf(field) })
	attrs := map[string]string{}
	for i, h := range header {
		if !mapped[i] && h != "" && strings.TrimSpace(record[i]) != "" {
			attrs[h] = strings.TrimSpace(record[i])
		}
	}
	if len(attrs) > 0 {
		w.CustomAttributes = attrs
	}
	return w
}

// ErrBadIdempotencyKey says an Idempotency-Key header cannot name an upload.
var ErrBadIdempotencyKey = errors.New("Idempotency-Key must be 1 to 255 visible ASCII characters")

// NewID returns the snapshot id of one upload. Every upload is a snapshot of its own, so a file
// uploaded again (HR is back where it was) is applied again; only the client's retries of one
// upload, which carry the same Idempotency-Key, get the same id, and JetStream stores their
// events once. Without a key the id is random.
func NewID(source, idempotencyKey string) (string, error) {
	if idempotencyKey == "" {
		random := make([]byte, 12)
		if _, err := rand.Read(random); err != nil {
			return "", fmt.Errorf("snapshot id: %w", err)
		}
		return "snap-" + hex.EncodeToString(random), nil
	}
	if len(idempotencyKey) > 255 || strings.ContainsFunc(idempotencyKey, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return "", ErrBadIdempotencyKey
	}
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(idempotencyKey))
	return "snap-" + hex.EncodeToString(h.Sum(nil)[:12]), nil
}

// Events returns the snapshot as events in publishing order: BEGIN, the workers, END with the
// record count, every one carrying snapshotID. They have no event ids: the ingest pipeline
// names them after the snapshot.
func Events(snapshotID string, workers []*orgsyncv1.Worker) []*orgsyncv1.HREvent {
	events := make([]*orgsyncv1.HREvent, 0, len(workers)+2)
	events = append(events, &orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_Snapshot{
		Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: snapshotID, Phase: orgsyncv1.SnapshotMarker_PHASE_BEGIN},
	}})
	for _, w := range workers {
		events = append(events, &orgsyncv1.HREvent{SnapshotId: snapshotID, Payload: &orgsyncv1.HREvent_Worker{Worker: w}})
	}
	events = append(events, &orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_Snapshot{
		Snapshot: &orgsyncv1.SnapshotMarker{SnapshotId: snapshotID, Phase: orgsyncv1.SnapshotMarker_PHASE_END, RecordCount: int64(len(workers))},
	}})
	return events
}

// knownField reports whether name is one of Fields.
func knownField(name string) bool {
	i := sort.SearchStrings(sortedFields, name)
	return i < len(sortedFields) && sortedFields[i] == name
}

var sortedFields = func() []string {
	s := append([]string(nil), Fields...)
	sort.Strings(s)
	return s
}()

// CheckMapping says what is wrong with a mapping: a field that is not a worker field.
func CheckMapping(m Mapping) error {
	var bad []string
	for field := range m {
		if !knownField(field) {
			bad = append(bad, field)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("not worker fields: %s (known: %s)", strings.Join(bad, ", "), strings.Join(Fields, ", "))
	}
	return nil
}
