// Package vendortest has fake HR vendor APIs for tests (of hr-ingest and of the local stack), written from each vendor's public API
// documentation: the same paths, authentication, status codes and rate-limit answers (429 with
// Retry-After), refusing what the real API refuses. A fake can be told to fail the next
// requests, and can be stopped and started again on the same address (the vendor down for a
// while). Never the real vendors.
package vendortest

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Fault is an answer a fake gives instead of serving a request.
type Fault struct {
	Status int
	// RetryAfter, when set, is sent as the Retry-After header (seconds or an HTTP date).
	RetryAfter string
}

// server is what every fake shares: the listener that can be stopped and started again, the
// injected faults, and the count of employee reads. It is safe for concurrent use.
type server struct {
	t       testing.TB
	handler http.Handler
	addr    string

	mu       sync.Mutex
	srv      *http.Server
	done     chan struct{}
	faults   []Fault
	requests int
}

func startServer(t testing.TB, handler http.Handler) *server {
	t.Helper()
	s := &server{t: t, handler: handler}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = listener.Addr().String()
	s.serve(listener)
	t.Cleanup(s.Stop)
	return s
}

func (s *server) serve(listener net.Listener) {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	s.srv, s.done = srv, done
	go func() {
		defer close(done)
		_ = srv.Serve(listener)
	}()
}

// URL is the fake's base URL, http://127.0.0.1:PORT.
func (s *server) URL() string { return "http://" + s.addr }

// Stop closes the listener and every connection: the vendor is down. It waits for the serving
// goroutine to end.
func (s *server) Stop() {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	<-done
}

// Start listens again on the same address after Stop.
func (s *server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	var listener net.Listener
	var err error
	for range 50 { // the port may linger briefly after Stop
		if listener, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("restarting the fake vendor on %s: %v", s.addr, err)
	}
	s.serve(listener)
}

// Fail makes the next len(faults) employee reads answer those faults, in order, after their
// credentials were checked.
func (s *server) Fail(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// Requests counts the employee reads that reached the fake, whatever it answered (refused
// credentials included).
func (s *server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// hit counts a request to read an employee.
func (s *server) hit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
}

// fault returns the fault the request must answer, if any.
func (s *server) fault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(`{"error":"` + strconv.Itoa(f.Status) + `"}`))
}
