package poll

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/orgsync/orgsync/services/hr-ingest/internal/notify"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
)

// What a request's error means besides those of notify.ResponseError (notify.ErrUnauthorized
// for 401/403, notify.ErrNotFound for 404, a *notify.ThrottledError for 429, transient for the
// rest).
var (
	// ErrRefused: the endpoint refused the request as malformed (400: a filter field it does not
	// know, a page larger than it allows). Retrying the same request cannot fix it.
	ErrRefused = errors.New("endpoint refused the request (400): check the source's poll settings")
	// ErrForeignNext: a next-page link points to another host; the source's credentials are not
	// sent there.
	ErrForeignNext = errors.New("next-page link points to another host")
)

// Permanent says whether retrying the request that returned err cannot help: refused
// credentials, an unknown endpoint, a refused request, a next link to another host.
func Permanent(err error) bool {
	return errors.Is(err, notify.ErrUnauthorized) || errors.Is(err, notify.ErrNotFound) ||
		errors.Is(err, ErrRefused) || errors.Is(err, ErrForeignNext)
}

// Request is one page to ask for.
type Request struct {
	// Since asks for the records changed at or after it; zero asks for every record.
	Since time.Time
	// Offset is the records to skip (paging mode offset).
	Offset int
	// Next is the URL of the next page (paging mode next); it replaces everything else.
	Next string
}

// Client asks a poll source's endpoint for pages. It is safe for concurrent use; its errors
// never hold the credentials or a record's values.
type Client struct {
	name string
	cfg  source.Poll
	loc  *time.Location
	base *url.URL
	http *http.Client
}

// NewClient returns the client of a poll source (cfg with its defaults filled in by
// source.Config.WithDefaults); httpClient nil is one with the source's timeout.
func NewClient(cfg source.Config, httpClient *http.Client) (*Client, error) {
	cfg = cfg.WithDefaults()
	base, err := url.Parse(cfg.Poll.URL)
	if err != nil {
		return nil, fmt.Errorf("source %q: poll.url: %w", cfg.Name, err)
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: cfg.Poll.Timeout}
	}
	return &Client{name: cfg.Name, cfg: cfg.Poll, loc: cfg.Location, base: base, http: httpClient}, nil
}

// URL is the URL of req, without credentials (they go in a header).
func (c *Client) URL(req Request) (string, error) {
	if req.Next != "" {
		next, err := c.base.Parse(req.Next)
		if err != nil {
			return "", fmt.Errorf("next-page link: %w", err)
		}
		if next.Host != c.base.Host || next.Scheme != c.base.Scheme {
			return "", ErrForeignNext
		}
		return next.String(), nil
	}
	u := *c.base
	q := u.Query()
	for k, v := range c.cfg.Query {
		q.Set(k, v)
	}
	if req.Since.IsZero() {
		for k, v := range c.cfg.FullQuery {
			q.Set(k, v)
		}
	} else if c.cfg.Incremental() {
		for k, v := range c.cfg.ChangedSince.Query {
			q.Set(k, v)
		}
		q.Set(c.cfg.ChangedSince.Param, c.FormatCursor(req.Since))
	}
	if c.cfg.Paging.Mode == source.PagingOffset {
		q.Set(c.cfg.Paging.OffsetParam, strconv.Itoa(req.Offset))
		q.Set(c.cfg.Paging.LimitParam, strconv.Itoa(c.cfg.Paging.Size))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// FormatCursor writes a cursor as the endpoint's changed-since parameter expects it, in the
// source's time zone.
func (c *Client) FormatCursor(t time.Time) string {
	switch c.cfg.ChangedSince.Format {
	case "unix":
		return strconv.FormatInt(t.Unix(), 10)
	case "unixms":
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	return t.In(c.loc).Format(c.cfg.ChangedSince.Format)
}

// Fetch asks for one page and reads it (ParsePage).
func (c *Client) Fetch(ctx context.Context, req Request) (Page, error) {
	target, err := c.URL(req)
	if err != nil {
		return Page{}, err
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return Page{}, fmt.Errorf("poll request: %w", err)
	}
	if c.cfg.Format == "csv" {
		httpReq.Header.Set("Accept", "text/csv")
	} else {
		httpReq.Header.Set("Accept", "application/json")
	}
	c.authorize(httpReq)
	resp, err := c.http.Do(httpReq)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry the cursor and filter, never needed in a log
		}
		return Page{}, fmt.Errorf("source %s endpoint: %w", c.name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusBadRequest {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return Page{}, fmt.Errorf("source %s: %w", c.name, ErrRefused)
	}
	if err := notify.ResponseError("source "+c.name+" endpoint", resp); err != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return Page{}, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	if err != nil {
		return Page{}, fmt.Errorf("source %s endpoint: reading the answer: %w", c.name, err)
	}
	if len(body) > maxPageBytes {
		return Page{}, fmt.Errorf("source %s endpoint: an answer larger than %d bytes: lower paging.size", c.name, maxPageBytes)
	}
	return ParsePage(c.cfg, c.loc, body)
}

// authorize sets the request's credentials as the source's auth scheme says.
func (c *Client) authorize(req *http.Request) {
	secret := c.cfg.Auth.Secret
	switch c.cfg.Auth.Scheme {
	case source.AuthBasic:
		req.SetBasicAuth(c.cfg.Auth.User, secret)
	case source.AuthHeader:
		req.Header.Set(c.cfg.Auth.Header, secret)
	case source.AuthAFAS:
		req.Header.Set("Authorization", AFASAuthorization(secret))
	default:
		req.Header.Set("Authorization", "Bearer "+secret)
	}
}

// AFASAuthorization is the Authorization header value of an AFAS token: "AfasToken " and the
// base64 of the token XML (<token><version>1</version><data>…</data></token>). A token given
// as its data only is wrapped in that XML first.
func AFASAuthorization(token string) string {
	token = strings.TrimSpace(token)
	if !strings.HasPrefix(token, "<token>") {
		token = "<token><version>1</version><data>" + token + "</data></token>"
	}
	return "AfasToken " + base64.StdEncoding.EncodeToString([]byte(token))
}
