package personio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/normalize"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/writeback"
)

const maxRecordBytes = 1 << 20

// maxEmploymentPages bounds the pages of a person's employments read (50 a page).
const maxEmploymentPages = 20

// Client reads persons through Personio's API v2 with API credentials (client id and secret):
// an access token from POST {base}/v2/auth/token (form-encoded client_credentials grant), kept
// until shortly before it expires and fetched again when the API answers 401; the person from
// GET {base}/v2/persons/{id}, and their employments, most recent first, from GET
// {base}/v2/persons/{id}/employments (cursor-paginated, 50 a page). base is
// https://api.personio.de. It is safe for concurrent use.
type Client struct {
	base         string
	clientID     string
	clientSecret string
	loc          *time.Location
	http         *http.Client
	now          func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

var _ notify.Client = (*Client)(nil)

// NewClient returns a Client; loc defaults to UTC, httpClient to one with a 30s timeout.
func NewClient(baseURL, clientID, clientSecret string, loc *time.Location, httpClient *http.Client) *Client {
	if loc == nil {
		loc = time.UTC
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), clientID: clientID, clientSecret: clientSecret, loc: loc, http: httpClient, now: time.Now}
}

// Person is the part of a Personio person orgsync maps.
type Person struct {
	ID            string `json:"id"`
	FirstName     string `json:"first_name"`
	LastName      string `json:"last_name"`
	PreferredName string `json:"preferred_name"`
	Email         string `json:"email"`
}

// Employment is the part of a Personio employment orgsync maps.
type Employment struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	StartDate string `json:"start_date"`
	Position  struct {
		Title string `json:"title"`
	} `json:"position"`
	Supervisor struct {
		ID json.RawMessage `json:"id"`
	} `json:"supervisor"`
	Termination struct {
		TerminationDate string `json:"termination_date"`
	} `json:"termination"`
}

type page struct {
	Data []Employment `json:"_data"`
	Meta struct {
		Links struct {
			Next struct {
				Href string `json:"href"`
			} `json:"next"`
		} `json:"links"`
	} `json:"_meta"`
}

// Fetch reads one person and their current employment and maps them to a worker event.
func (c *Client) Fetch(ctx context.Context, personID string) (*orgsyncv1.HREvent, error) {
	var person Person
	if err := c.get(ctx, "/v2/persons/"+url.PathEscape(personID), &person); err != nil {
		return nil, err
	}
	if person.ID == "" {
		person.ID = personID
	}
	var employments []Employment
	next := "/v2/persons/" + url.PathEscape(personID) + "/employments?limit=50"
	for range maxEmploymentPages {
		var p page
		if err := c.get(ctx, next, &p); err != nil {
			return nil, err
		}
		employments = append(employments, p.Data...)
		next = p.Meta.Links.Next.Href
		if next == "" {
			break
		}
		if u, err := url.Parse(next); err == nil && u.IsAbs() {
			next = u.RequestURI() // the API's own link, asked of the configured base
		}
	}
	var current *Employment
	if len(employments) > 0 {
		current = &employments[0] // most recent first
	}
	return Map(person, current, c.loc)
}

// get reads path into into.
func (c *Client) get(ctx context.Context, path string, into any) error {
	return c.do(ctx, http.MethodGet, path, nil, into)
}

// do sends a request with a token, fetching a new token once if the API refuses it, and decodes
// the answer into into (when not nil).
func (c *Client) do(ctx context.Context, method, path string, body []byte, into any) error {
	for attempt := 0; ; attempt++ {
		token, err := c.accessToken(ctx)
		if err != nil {
			return err
		}
		var reader io.Reader
		if body != nil {
			reader = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, reader)
		if err != nil {
			return fmt.Errorf("personio API request: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("personio API: %w", redact(err))
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			// The token expired or was revoked early: forget it and ask for a new one once.
			drain(resp)
			c.forget(token)
			continue
		}
		defer drain(resp)
		if into == nil { // a write
			return writeback.ResponseError("personio API", resp)
		}
		if err := notify.ResponseError("personio", resp); err != nil {
			return err
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxRecordBytes)).Decode(into); err != nil {
			return fmt.Errorf("personio API answered something that is not the expected JSON object: %w", err)
		}
		return nil
	}
}

// accessToken returns the cached token, or a new one from the token endpoint.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.expires) {
		return c.token, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.clientID}, "client_secret": {c.clientSecret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v2/auth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("personio token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("personio token endpoint: %w", redact(err))
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusBadRequest {
		// OAuth answers invalid_client / invalid_grant with 400 too: credentials, not a retry.
		return "", fmt.Errorf("personio token endpoint answered 400: %w", notify.ErrUnauthorized)
	}
	if err := notify.ResponseError("personio token endpoint", resp); err != nil {
		if errors.Is(err, notify.ErrNotFound) {
			return "", fmt.Errorf("personio token endpoint not found (api.baseURL?): %w", notify.ErrUnauthorized)
		}
		return "", err
	}
	var answer struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&answer); err != nil || answer.AccessToken == "" {
		return "", errors.New("personio token endpoint answered no access_token")
	}
	lifetime := time.Duration(answer.ExpiresIn) * time.Second
	if lifetime <= 0 {
		lifetime = time.Hour
	}
	c.token, c.expires = answer.AccessToken, c.now().Add(lifetime-min(lifetime/10, time.Minute))
	return c.token, nil
}

// forget drops token if it is still the cached one.
func (c *Client) forget(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
	}
}

// Map turns a person and their current employment (nil without one) into a worker event; every
// invalid field is reported at once (*normalize.InvalidError), pointing into Personio's records.
func Map(p Person, e *Employment, loc *time.Location) (*orgsyncv1.HREvent, error) {
	errs := &normalize.Errors{}
	w := &orgsyncv1.Worker{
		WorkerId:         p.ID,
		Name:             &orgsyncv1.PersonName{GivenName: p.FirstName, FamilyName: p.LastName, PreferredName: p.PreferredName},
		WorkEmail:        p.Email,
		EmploymentStatus: orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_ACTIVE,
	}
	if why := normalize.ValidID(p.ID); why != "" {
		errs.Add("/id", why)
	}
	if e != nil {
		w.JobTitle = e.Position.Title
		if manager := text(e.Supervisor.ID); manager != "" {
			if why := normalize.ValidID(manager); why != "" {
				errs.Add("/employments/0/supervisor/id", why)
			}
			w.ManagerWorkerId = manager
		}
		switch strings.ToUpper(e.Status) {
		case "", "ACTIVE", "ONBOARDING", "LEAVE":
		case "INACTIVE", "TERMINATED":
			w.EmploymentStatus = orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED
		default:
			errs.Add("/employments/0/status", fmt.Sprintf("%q is not ACTIVE, ONBOARDING, LEAVE or INACTIVE", e.Status))
		}
		date := func(value, pointer string) *orgsyncv1.Date {
			if value == "" {
				return nil
			}
			d, err := normalize.Date(value, loc)
			if err != nil {
				errs.Add(pointer, err.Error())
			}
			return d
		}
		w.StartDate = date(e.StartDate, "/employments/0/start_date")
		w.EndDate = date(e.Termination.TerminationDate, "/employments/0/termination/termination_date")
	}
	if w.EmploymentStatus != orgsyncv1.EmploymentStatus_EMPLOYMENT_STATUS_TERMINATED {
		if strings.TrimSpace(p.FirstName) == "" {
			errs.Add("/first_name", "required (give the API credentials the person's name attributes)")
		}
		if strings.TrimSpace(p.LastName) == "" {
			errs.Add("/last_name", "required (give the API credentials the person's name attributes)")
		}
	}
	normalize.Worker(w, errs, "", normalize.WorkerFieldNames{WorkEmail: "/email", EndDate: "/employments/0/termination/termination_date"})
	normalize.CheckLengths(w, errs, func(field string) string {
		if pointer, ok := pointers[field]; ok {
			return pointer
		}
		return "/" + field
	})
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &orgsyncv1.HREvent{Payload: &orgsyncv1.HREvent_Worker{Worker: w}}, nil
}

// pointers names, by worker field, where in Personio's records a too-long value came from.
var pointers = map[string]string{
	"workerId": "/id", "givenName": "/first_name", "familyName": "/last_name", "preferredName": "/preferred_name",
	"workEmail": "/email", "jobTitle": "/employments/0/position/title", "managerWorkerId": "/employments/0/supervisor/id",
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxRecordBytes))
	_ = resp.Body.Close()
}

// redact drops the URL from a transport error; the cause is kept.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
