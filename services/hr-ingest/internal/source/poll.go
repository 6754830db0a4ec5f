package source

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/snapshot"
)

// Poll is how hr-ingest reads a source that has no webhooks (kind poll): an HTTP endpoint
// answering JSON or CSV records, asked for the records changed since a cursor, page by page,
// every Interval, and read whole every FullSyncEvery (a full pull, published as a snapshot of
// the source). A preset (PresetAFAS, PresetWorkday) fills in what a vendor fixes.
type Poll struct {
	// Preset names a vendor whose defaults apply: "afas" or "workday"; "" is generic.
	Preset string
	// URL is the endpoint, e.g. https://12345.rest.afas.online/ProfitRestServices/connectors/Orgsync_Employees.
	URL string
	// Format is what the endpoint answers: "json" (default) or "csv".
	Format string
	// Records is the member of a JSON answer holding the array of records ("rows" for AFAS,
	// "Report_Entry" for Workday); "" when the answer is the array itself.
	Records string
	// Auth is how hr-ingest proves itself to the endpoint.
	Auth PollAuth
	// Query parameters sent with every request.
	Query map[string]string
	// FullQuery parameters are sent only with a full pull (AFAS: orderbyfieldids on the worker
	// id, so that a record changing while the pull pages moves no other record out of it).
	FullQuery map[string]string
	// ChangedSince is how a request asks for the records changed since the cursor; without
	// Param every poll is a full pull.
	ChangedSince ChangedSince
	// Paging is how the records are read page by page.
	Paging Paging
	// Fields maps worker fields (snapshot.Fields) to the record's field names; a worker field not
	// mapped is read from a record field of its own name. Unmapped record fields become custom
	// attributes. workerId and familyName are required, as in a CSV export.
	Fields map[string]string
	// ModifiedField is the record field holding when the record last changed: it is the cursor,
	// the event's occurred_at, and, with the worker id, its event id.
	ModifiedField string
	// Interval is the time between two polls; default 1m.
	Interval time.Duration
	// FullSyncEvery is the time between two full pulls; default 24h.
	FullSyncEvery time.Duration
	// Timeout bounds one HTTP request; default 60s.
	Timeout time.Duration
	// MaxRecords bounds a full pull (it is held in memory while it is published); default 500000.
	MaxRecords int
}

// PollAuth is how a poll source's requests prove who sends them.
type PollAuth struct {
	// Scheme is "bearer" (Authorization: Bearer <secret>), "basic" (User and the secret as
	// password), "header" (Header: <secret>) or "afas" (Authorization: AfasToken <base64 of the
	// token XML>).
	Scheme string
	// User is the basic scheme's user name (a Workday integration system user: ISU@tenant).
	User string
	// Header names the header of the header scheme, e.g. X-API-Key.
	Header string
	// Secret is the token, password or key, from the source's secrets.
	Secret string
}

// ChangedSince asks for the records changed since the cursor.
type ChangedSince struct {
	// Param is the query parameter the cursor is sent in (AFAS: filtervalues).
	Param string
	// Format is the cursor's form: a Go time layout (default 2006-01-02T15:04:05), or "unix",
	// "unixms". It is written in the source's time zone.
	Format string
	// Query parameters sent only with the cursor (AFAS: filterfieldids, operatortypes,
	// orderbyfieldids on the modified field then the worker id: the poller pages from the
	// newest modified time it has seen, which needs that order).
	Query map[string]string
	// Overlap is how far before the cursor every poll reads again, for records whose modified
	// time was written late (a transaction committed after a later one); records already
	// published are recognised and skipped. Default 1m.
	Overlap time.Duration
}

// Paging says how the endpoint pages.
type Paging struct {
	// Mode is "offset" (OffsetParam/LimitParam, e.g. AFAS skip/take), "next" (a member of the
	// answer holds the next page's URL) or "none".
	Mode        string
	OffsetParam string
	LimitParam  string
	// Size is the records per page; default 100.
	Size int
	// Next is the member of a JSON answer holding the next page's URL (mode next).
	Next string
}

// Presets.
const (
	PresetAFAS    = "afas"
	PresetWorkday = "workday"
)

// Auth schemes.
const (
	AuthBearer = "bearer"
	AuthBasic  = "basic"
	AuthHeader = "header"
	AuthAFAS   = "afas"
)

// Paging modes.
const (
	PagingOffset = "offset"
	PagingNext   = "next"
	PagingNone   = "none"
)

// AFASOperatorAtLeast is AFAS's filter operator "is greater than or equal to".
const AFASOperatorAtLeast = "2"

// WithDefaults fills in the preset's settings and the defaults; what is set explicitly wins.
func (p Poll) WithDefaults() Poll {
	switch p.Preset {
	case PresetAFAS:
		// GetConnector (REST): GET {url}?skip=&take=&filterfieldids=&filtervalues=&operatortypes=
		// &orderbyfieldids=, answered {"skip":…,"take":…,"rows":[…]}; Authorization: AfasToken.
		p.Format = or(p.Format, "json")
		p.Records = or(p.Records, "rows")
		p.Auth.Scheme = or(p.Auth.Scheme, AuthAFAS)
		p.Paging.Mode = or(p.Paging.Mode, PagingOffset)
		p.Paging.OffsetParam = or(p.Paging.OffsetParam, "skip")
		p.Paging.LimitParam = or(p.Paging.LimitParam, "take")
		p.ChangedSince.Param = or(p.ChangedSince.Param, "filtervalues")
		if p.ChangedSince.Query == nil && p.ModifiedField != "" {
			// Paging with skip/take needs a stable order (AFAS's advice: sort on a unique
			// field); changes by modified time first, so the poller can page from the newest
			// modified time it has seen.
			p.ChangedSince.Query = map[string]string{"filterfieldids": p.ModifiedField, "operatortypes": AFASOperatorAtLeast,
				"orderbyfieldids": p.ModifiedField + "," + p.idField()}
		}
		if p.FullQuery == nil {
			p.FullQuery = map[string]string{"orderbyfieldids": p.idField()}
		}
	case PresetWorkday:
		// RaaS: GET {url}?format=json answered {"Report_Entry":[…]}, one answer, no paging;
		// the changed-since prompt is the report's own (ChangedSince.Param).
		p.Format = or(p.Format, "json")
		p.Records = or(p.Records, "Report_Entry")
		p.Auth.Scheme = or(p.Auth.Scheme, AuthBasic)
		p.Paging.Mode = or(p.Paging.Mode, PagingNone)
		if p.Query == nil {
			p.Query = map[string]string{"format": "json"}
		}
		p.ChangedSince.Format = or(p.ChangedSince.Format, "2006-01-02T15:04:05-07:00")
	}
	p.Format = or(p.Format, "json")
	p.Auth.Scheme = or(p.Auth.Scheme, AuthBearer)
	p.Paging.Mode = or(p.Paging.Mode, PagingNone)
	if p.Paging.Size <= 0 {
		p.Paging.Size = 100
	}
	p.ChangedSince.Format = or(p.ChangedSince.Format, "2006-01-02T15:04:05")
	if p.ChangedSince.Overlap <= 0 {
		p.ChangedSince.Overlap = time.Minute
	}
	if p.Interval <= 0 {
		p.Interval = time.Minute
	}
	if p.FullSyncEvery <= 0 {
		p.FullSyncEvery = 24 * time.Hour
	}
	if p.Timeout <= 0 {
		p.Timeout = 60 * time.Second
	}
	if p.MaxRecords <= 0 {
		p.MaxRecords = 500_000
	}
	return p
}

func (p Poll) idField() string {
	if f, ok := p.Fields["workerId"]; ok {
		return f
	}
	return "workerId"
}

// Incremental says whether the source can be asked for the records changed since a cursor.
func (p Poll) Incremental() bool { return p.ChangedSince.Param != "" }

func or(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}

// validate checks a poll source's settings (with its defaults filled in), naming each problem
// by its key in the policy file.
func (p Poll) validate(source string) []error {
	p = p.WithDefaults()
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("source %q: poll.%s", source, fmt.Sprintf(format, args...)))
	}
	if p.Preset != "" && p.Preset != PresetAFAS && p.Preset != PresetWorkday {
		fail("preset %q is not one of afas, workday", p.Preset)
	}
	if u, err := url.Parse(p.URL); p.URL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		fail("url must be the endpoint's http or https URL")
	} else if u.User != nil {
		fail("url must not hold credentials: use auth and the source's secrets")
	}
	if p.Format != "json" && p.Format != "csv" {
		fail("format %q is not json or csv", p.Format)
	}
	switch p.Auth.Scheme {
	case AuthBearer, AuthAFAS:
	case AuthBasic:
		if p.Auth.User == "" {
			fail("auth.user is required with auth scheme basic")
		}
	case AuthHeader:
		if p.Auth.Header == "" {
			fail("auth.header names the header of auth scheme header (e.g. X-API-Key)")
		}
	default:
		fail("auth.scheme %q is not one of bearer, basic, header, afas", p.Auth.Scheme)
	}
	if p.Auth.Secret == "" {
		errs = append(errs, fmt.Errorf("source %q needs the endpoint's token or password in secrets", source))
	}
	switch p.Paging.Mode {
	case PagingOffset:
		if p.Paging.OffsetParam == "" || p.Paging.LimitParam == "" {
			fail("paging.offsetParam and paging.limitParam are required with paging mode offset")
		}
	case PagingNext:
		if p.Paging.Next == "" {
			fail("paging.next names the answer's member holding the next page's URL")
		}
		if p.Format != "json" {
			fail("paging mode next needs format json")
		}
	case PagingNone:
	default:
		fail("paging.mode %q is not one of offset, next, none", p.Paging.Mode)
	}
	if p.Incremental() && p.ModifiedField == "" && p.Preset != PresetAFAS {
		fail("modifiedField is required with changedSince: it is the cursor")
	}
	if p.Preset == PresetAFAS && p.ModifiedField == "" {
		fail("modifiedField is required with preset afas (the connector's modified date-time field)")
	}
	switch p.ChangedSince.Format {
	case "unix", "unixms":
	default:
		if !strings.Contains(p.ChangedSince.Format, "2006") {
			fail("changedSince.format %q is not unix, unixms or a Go time layout such as 2006-01-02T15:04:05", p.ChangedSince.Format)
		}
	}
	if err := snapshot.CheckMapping(p.Fields); err != nil {
		fail("fields: %v", err)
	}
	if p.Interval < time.Second {
		fail("interval %v is shorter than 1s", p.Interval)
	}
	if p.FullSyncEvery < p.Interval {
		fail("fullSyncEvery %v is shorter than the interval %v", p.FullSyncEvery, p.Interval)
	}
	for _, reserved := range []string{p.Paging.OffsetParam, p.Paging.LimitParam, p.ChangedSince.Param} {
		for what, query := range map[string]map[string]string{"query": p.Query, "fullQuery": p.FullQuery, "changedSince.query": p.ChangedSince.Query} {
			if _, clash := query[reserved]; reserved != "" && clash {
				fail("%s sets %q, which the poller sets itself", what, reserved)
			}
		}
	}
	if slices.Contains([]string{p.Paging.OffsetParam, p.Paging.LimitParam}, p.ChangedSince.Param) && p.ChangedSince.Param != "" {
		fail("changedSince.param %q is also a paging parameter", p.ChangedSince.Param)
	}
	return errs
}
