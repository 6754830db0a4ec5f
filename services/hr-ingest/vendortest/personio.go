package vendortest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// Personio is a fake of Personio's API v2 for one company: POST /v2/auth/token (form-encoded
// client_credentials grant with client_id and client_secret, answering {access_token,
// token_type, expires_in}; a wrong client is 401 {"error":"invalid_client"}, another grant 400
// {"error":"unsupported_grant_type"}), GET /v2/persons/{id} and GET
// /v2/persons/{id}/employments (cursor-paginated: limit 1–50, default 10, next page in
// _meta.links.next.href), both with a bearer token from the token endpoint. An unknown or
// expired token is 401, an unknown person 404, a bad limit 400 — errors as RFC 9457
// application/problem+json, as Personio answers them. Faults apply to person reads, which are
// what Requests counts.
type Personio struct {
	*server
	clientID     string
	clientSecret string

	mu          sync.Mutex
	tokens      map[string]bool
	persons     map[string]map[string]any
	employments map[string][]map[string]any
	tokenAsks   int
	// customAttributes are the company's custom attributes an update may set.
	customAttributes map[string]bool
	updates          []PersonioUpdate
}

// PersonioUpdate is one person update Personio accepted: the body sent.
type PersonioUpdate struct {
	PersonID string
	Body     map[string]any
}

// NewPersonio starts a fake accepting clientID and clientSecret; it stops when the test ends.
func NewPersonio(t testing.TB, clientID, clientSecret string) *Personio {
	t.Helper()
	p := &Personio{clientID: clientID, clientSecret: clientSecret, tokens: map[string]bool{},
		persons: map[string]map[string]any{}, employments: map[string][]map[string]any{}, customAttributes: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/auth/token", p.token)
	mux.HandleFunc("GET /v2/persons/{id}", p.person)
	mux.HandleFunc("GET /v2/persons/{id}/employments", p.employmentsOf)
	mux.HandleFunc("PATCH /v2/persons/{id}", p.update)
	p.server = startServer(t, mux)
	return p
}

// BaseURL is what a source's api.baseURL is set to.
func (p *Personio) BaseURL() string { return p.URL() }

// Put stores or replaces a person (fields as Personio names them: first_name, last_name, email…)
// and their employments, most recent first (status, start_date, position.title, supervisor.id…).
func (p *Personio) Put(id string, person map[string]any, employments ...map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	record := maps.Clone(person)
	record["id"] = id
	p.persons[id] = record
	p.employments[id] = employments
}

// Delete removes a person: reading them is 404 from then on.
func (p *Personio) Delete(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.persons, id)
	delete(p.employments, id)
}

// RevokeTokens makes every token issued so far unknown (as when it expired).
func (p *Personio) RevokeTokens() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens = map[string]bool{}
}

// TokenRequests counts the token endpoint's requests.
func (p *Personio) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenAsks
}

func (p *Personio) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.tokenAsks++
	p.mu.Unlock()
	if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType != "application/x-www-form-urlencoded" || r.ParseForm() != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	if r.PostForm.Get("client_id") != p.clientID || r.PostForm.Get("client_secret") != p.clientSecret {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	token := "papi-" + hex.EncodeToString(raw)
	p.mu.Lock()
	p.tokens[token] = true
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": 86400, "scope": "personio:persons:read"})
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

// problem writes an RFC 9457 problem, as Personio's API v2 does.
func problem(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": status})
}

func (p *Personio) authorized(w http.ResponseWriter, r *http.Request) bool {
	const prefix = "Bearer "
	header := r.Header.Get("Authorization")
	p.mu.Lock()
	ok := len(header) > len(prefix) && header[:len(prefix)] == prefix && p.tokens[header[len(prefix):]]
	p.mu.Unlock()
	if !ok {
		problem(w, http.StatusUnauthorized, "Unauthorized")
	}
	return ok
}

func (p *Personio) person(w http.ResponseWriter, r *http.Request) {
	p.hit()
	if !p.authorized(w, r) {
		return
	}
	if fault, ok := p.fault(); ok {
		writeFault(w, fault)
		return
	}
	p.mu.Lock()
	record, found := p.persons[r.PathValue("id")]
	p.mu.Unlock()
	if !found {
		problem(w, http.StatusNotFound, "Person not found")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(record)
}

func (p *Personio) employmentsOf(w http.ResponseWriter, r *http.Request) {
	if !p.authorized(w, r) {
		return
	}
	limit := 10
	if text := r.URL.Query().Get("limit"); text != "" {
		n, err := strconv.Atoi(text)
		if err != nil || n < 1 || n > 50 {
			problem(w, http.StatusBadRequest, "limit must be between 1 and 50")
			return
		}
		limit = n
	}
	offset := 0
	if cursor := r.URL.Query().Get("cursor"); cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 0 {
			problem(w, http.StatusBadRequest, "invalid cursor")
			return
		}
		offset = n
	}
	p.mu.Lock()
	all, found := p.employments[r.PathValue("id")]
	p.mu.Unlock()
	if !found {
		problem(w, http.StatusNotFound, "Person not found")
		return
	}
	end := min(offset+limit, len(all))
	data := []map[string]any{}
	if offset < len(all) {
		data = all[offset:end]
	}
	meta := map[string]any{"links": map[string]any{}}
	if end < len(all) {
		meta["links"] = map[string]any{"next": map[string]string{
			"href": "https://api.personio.de/v2/persons/" + r.PathValue("id") + "/employments?limit=" + strconv.Itoa(limit) + "&cursor=" + strconv.Itoa(end)}}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"_data": data, "_meta": meta})
}

// AddCustomAttribute declares a custom attribute (by id) that updates may set.
func (p *Personio) AddCustomAttribute(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.customAttributes[id] = true
}

// Updates returns the person updates accepted so far, in order.
func (p *Personio) Updates() []PersonioUpdate {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PersonioUpdate(nil), p.updates...)
}

// update is "Update a Person": PATCH /v2/persons/{person_id} with the fields to change (email,
// first_name, last_name, preferred_name, gender, language_code, custom_attributes [{id, value}]);
// 204 when stored, 400 for an unknown field or custom attribute or an e-mail another person has
// (e-mails are unique), 404 for an unknown person.
func (p *Personio) update(w http.ResponseWriter, r *http.Request) {
	p.hit()
	if !p.authorized(w, r) {
		return
	}
	if fault, ok := p.fault(); ok {
		writeFault(w, fault)
		return
	}
	var body map[string]any
	if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil || len(body) == 0 {
		problem(w, http.StatusBadRequest, "Invalid request body")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	record, found := p.persons[r.PathValue("id")]
	if !found {
		problem(w, http.StatusNotFound, "Person not found")
		return
	}
	for field, value := range body {
		switch field {
		case "email":
			for id, other := range p.persons {
				if id != r.PathValue("id") && other["email"] == value {
					problem(w, http.StatusBadRequest, "The email must be unique")
					return
				}
			}
		case "first_name", "last_name", "preferred_name", "gender", "language_code":
		case "custom_attributes":
			list, ok := value.([]any)
			if !ok {
				problem(w, http.StatusBadRequest, "custom_attributes must be a list")
				return
			}
			for _, item := range list {
				attribute, ok := item.(map[string]any)
				id, _ := attribute["id"].(string)
				if !ok || !p.customAttributes[id] {
					problem(w, http.StatusBadRequest, "Unknown custom attribute")
					return
				}
			}
		default:
			problem(w, http.StatusBadRequest, "Unknown field "+field)
			return
		}
	}
	maps.Copy(record, body)
	p.updates = append(p.updates, PersonioUpdate{PersonID: r.PathValue("id"), Body: body})
	w.WriteHeader(http.StatusNoContent)
}
