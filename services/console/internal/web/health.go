package web

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// deadLetter is one parked desired state as a writer's admin endpoint lists it.
type deadLetter struct {
	Path     string `json:"path"`
	Revision uint64 `json:"revision"`
	Error    string `json:"error"`
	Property string `json:"property"`
}

// writerView is one writer on the health page.
type writerView struct {
	Name        string
	DeadLetters []deadLetter
	DeadErr     string
	// Graph lists the writer's Graph budget and throttling metrics, "name value"; MetricsRead
	// says its metrics were read at all.
	Graph       []string
	MetricsRead bool
}

func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request, who person) {
	st, err := h.cfg.OrgModel.GetStatus(r.Context(), &orgsyncv1.GetStatusRequest{}, who.call())
	if err != nil {
		h.grpcFail(w, r, who, "GetStatus", err)
		return
	}
	var writers []writerView
	for _, writer := range h.cfg.Writers {
		view := writerView{Name: writer.Name}
		if writer.AdminURL != "" {
			letters, err := h.deadLetters(r, who, writer)
			if err != nil {
				h.cfg.Logger.WarnContext(r.Context(), "reading dead letters", "writer", writer.Name, "error", err)
				view.DeadErr = err.Error()
			}
			view.DeadLetters = letters
		}
		if writer.MetricsURL != "" {
			view.MetricsRead = true
			view.Graph = h.graphMetrics(r, writer.MetricsURL)
		}
		writers = append(writers, view)
	}
	h.render(w, r, http.StatusOK, "health", who, "Health", map[string]any{
		"Status": st, "Writers": writers, "Notice": r.URL.Query().Get("done"),
	})
}

func (h *Handler) adminRequest(r *http.Request, who person, method, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(r.Context(), method, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+who.token)
	return h.cfg.HTTPClient.Do(req)
}

func (h *Handler) deadLetters(r *http.Request, who person, writer Writer) ([]deadLetter, error) {
	resp, err := h.adminRequest(r, who, http.MethodGet, strings.TrimSuffix(writer.AdminURL, "/")+"/v1/dead-letters")
	if err != nil {
		return nil, fmt.Errorf("%s is unreachable", writer.Name)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", writer.Name, resp.Status)
	}
	var letters []deadLetter
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&letters); err != nil {
		return nil, fmt.Errorf("%s's dead letters: %w", writer.Name, err)
	}
	return letters, nil
}

// graphMetrics reads the writer's Prometheus text and keeps the Graph budget and throttling series.
func (h *Handler) graphMetrics(r *http.Request, url string) []string {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, url, nil)
	if err != nil {
		return nil
	}
	resp, err := h.cfg.HTTPClient.Do(req)
	if err != nil {
		return []string{"metrics unreachable"}
	}
	defer resp.Body.Close()
	var lines []string
	scanner := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if strings.HasPrefix(line, "orgsync_graph_") && !strings.Contains(line, "_bucket{") {
			lines = append(lines, line)
		}
	}
	slices.Sort(lines)
	return lines
}

func (h *Handler) serveReplay(w http.ResponseWriter, r *http.Request, who person) {
	name := r.PathValue("writer")
	index := slices.IndexFunc(h.cfg.Writers, func(wr Writer) bool { return wr.Name == name && wr.AdminURL != "" })
	if index < 0 {
		h.fail(w, r, who, http.StatusNotFound, fmt.Sprintf("%v: %s", errNoWriter, name))
		return
	}
	resp, err := h.adminRequest(r, who, http.MethodPost, strings.TrimSuffix(h.cfg.Writers[index].AdminURL, "/")+"/v1/dead-letters/replay")
	if err != nil {
		h.fail(w, r, who, http.StatusBadGateway, name+" is unreachable.")
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.fail(w, r, who, http.StatusBadGateway, name+" refused the replay: "+resp.Status)
		return
	}
	var outcome struct {
		Replayed int `json:"replayed"`
		Obsolete int `json:"obsolete"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&outcome)
	h.cfg.Logger.InfoContext(r.Context(), "dead letters replayed", "writer", name, "replayed", outcome.Replayed)
	http.Redirect(w, r, "/health?done="+urlQuery(fmt.Sprintf("%s: %d replayed, %d obsolete", name, outcome.Replayed, outcome.Obsolete)), http.StatusSeeOther)
}
