package graph

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// DryRunTransport sends reads on to base and, instead of sending a write (POST, PATCH, PUT,
// DELETE), logs it exactly — method, URL and JSON body, with any password replaced — and answers
// as Graph would on success: 201 with a made-up id for a create, 204 otherwise.
type DryRunTransport struct {
	Base   http.RoundTripper
	Logger *slog.Logger
}

// RoundTrip implements http.RoundTripper.
func (t DryRunTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet {
		return t.Base.RoundTrip(req)
	}
	body, err := requestBody(req)
	if err != nil {
		return nil, fmt.Errorf("dry run: reading the request body: %w", err)
	}
	t.Logger.InfoContext(req.Context(), "dry run: Graph request not sent",
		"method", req.Method, "url", req.URL.String(), "body", redactPasswords(body))

	status, answer := http.StatusNoContent, []byte(nil)
	if req.Method == http.MethodPost && !strings.HasSuffix(req.URL.Path, "/$ref") {
		var id [16]byte
		_, _ = rand.Read(id[:])
		status = http.StatusCreated
		answer, _ = json.Marshal(map[string]string{"id": fmt.Sprintf("dryrun-%x", id)})
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": []string{"application/json"}},
		Body:    io.NopCloser(bytes.NewReader(answer)),
		Request: req, ContentLength: int64(len(answer)),
	}, nil
}

func requestBody(req *http.Request) ([]byte, error) {
	if req.Body == nil {
		return nil, nil
	}
	defer req.Body.Close()
	var reader io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, err
		}
		defer gz.Close()
		reader = gz
	}
	return io.ReadAll(reader)
}

// redactPasswords returns the JSON body with every "password" value replaced.
func redactPasswords(body []byte) string {
	var decoded any
	if len(body) == 0 || json.Unmarshal(body, &decoded) != nil {
		return string(body)
	}
	redact(decoded)
	out, _ := json.Marshal(decoded)
	return string(out)
}

func redact(value any) {
	switch typed := value.(type) {
	case map[string]any:
		for key, v := range typed {
			if strings.EqualFold(key, "password") {
				typed[key] = "[redacted]"
				continue
			}
			redact(v)
		}
	case []any:
		for _, v := range typed {
			redact(v)
		}
	}
}
