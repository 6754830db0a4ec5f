package stream_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/orgsync/orgsync/pkg/envconfig"
	"github.com/orgsync/orgsync/pkg/logging"
	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/pkg/stream"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestClientConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := user.Seed()
	if err != nil {
		t.Fatal(err)
	}
	seedFile := writeFile(t, dir, "user.nk", string(seed))
	notASeed := writeFile(t, dir, "not-a-seed", "hello")
	password := writeFile(t, dir, "password", "s3cr3t\n")
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name          string
		vars          map[string]string
		manageDefault bool
		want          stream.ClientConfig
		wantErrs      []string
	}{
		{
			name: "nothing set: no credentials, waits for the streams",
			want: stream.ClientConfig{WaitForStreams: true},
		},
		{
			name:          "the owner by default creates them",
			manageDefault: true,
			want:          stream.ClientConfig{},
		},
		{
			name: "NATS_MANAGE_STREAMS overrides the default",
			vars: map[string]string{"NATS_MANAGE_STREAMS": "true"},
			want: stream.ClientConfig{},
		},
		{
			name: "nkey seed",
			vars: map[string]string{"NATS_NKEY_SEED_FILE": seedFile},
			want: stream.ClientConfig{NKeySeedFile: seedFile, WaitForStreams: true},
		},
		{
			name: "user and password file",
			vars: map[string]string{"NATS_USER": "hr-ingest", "NATS_PASSWORD_FILE": password},
			want: stream.ClientConfig{User: "hr-ingest", PasswordFile: password, WaitForStreams: true},
		},
		{
			name:     "a missing file names its variable",
			vars:     map[string]string{"NATS_CREDS_FILE": missing, "NATS_CA_FILE": missing},
			wantErrs: []string{"NATS_CREDS_FILE: reading " + missing, "NATS_CA_FILE: reading " + missing},
		},
		{
			name:     "a file that holds no seed",
			vars:     map[string]string{"NATS_NKEY_SEED_FILE": notASeed},
			wantErrs: []string{"NATS_NKEY_SEED_FILE: " + notASeed + " holds no nkey seed"},
		},
		{
			name:     "a user without a password",
			vars:     map[string]string{"NATS_USER": "hr-ingest"},
			wantErrs: []string{"NATS_USER: NATS_USER and NATS_PASSWORD_FILE go together"},
		},
		{
			name:     "two ways to authenticate",
			vars:     map[string]string{"NATS_NKEY_SEED_FILE": seedFile, "NATS_USER": "x", "NATS_PASSWORD_FILE": password},
			wantErrs: []string{"set only one of NATS_CREDS_FILE, NATS_NKEY_SEED_FILE and NATS_USER"},
		},
		{
			name:     "a certificate without its key",
			vars:     map[string]string{"NATS_CERT_FILE": password},
			wantErrs: []string{"NATS_CERT_FILE: NATS_CERT_FILE and NATS_KEY_FILE go together"},
		},
		{
			name:     "an inbox prefix with a wildcard",
			vars:     map[string]string{"NATS_INBOX_PREFIX": "_INBOX.>"},
			wantErrs: []string{"NATS_INBOX_PREFIX: \"_INBOX.>\" is not a subject prefix"},
		},
		{
			name:     "NATS_MANAGE_STREAMS not a boolean",
			vars:     map[string]string{"NATS_MANAGE_STREAMS": "sometimes"},
			wantErrs: []string{"NATS_MANAGE_STREAMS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envconfig.New(envconfig.Map(tt.vars))
			got := stream.ClientConfigFromEnv(env, tt.manageDefault)
			err := env.Err()
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("ClientConfig (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), string(seed)) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://alice:s3cr3t@nats:4222", "nats://redacted@nats:4222"},
		{"nats://t0ken@nats:4222", "nats://redacted@nats:4222"},
		{"nats://a:s3cr3t@n1:4222, nats://n2:4222", "nats://redacted@n1:4222,nats://n2:4222"},
		{"tls://a:%zz@n1:4222", "[unparsable URL with credentials]"},
	}
	for _, tt := range tests {
		if got := stream.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// syncBuffer is a log destination safe for the client's callbacks.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestConnectWithWaitsForTheOwnerOfTheStreams(t *testing.T) {
	srv := natsembed.StartForTest(t)
	logs := &syncBuffer{}
	type connected struct {
		nc  *nats.Conn
		js  jetstream.JetStream
		err error
	}
	done := make(chan connected, 1)
	go func() {
		nc, js, err := stream.ConnectWith(t.Context(), srv.ClientURL(), "hr-ingest", stream.ClientConfig{WaitForStreams: true},
			stream.DefaultConfig(), logging.New(logs, "hr-ingest", slog.LevelInfo))
		done <- connected{nc, js, err}
	}()
	// The waiting service has not created anything: wait until it has said it waits.
	for !strings.Contains(logs.String(), "waiting for the streams") {
		time.Sleep(10 * time.Millisecond)
	}
	ownerConn, _, err := stream.ConnectWith(t.Context(), srv.ClientURL(), "org-model", stream.ClientConfig{}, stream.DefaultConfig(), logging.New(logs, "org-model", slog.LevelInfo))
	if err != nil {
		t.Fatalf("owner: %v", err)
	}
	t.Cleanup(ownerConn.Close)
	got := <-done
	if got.err != nil {
		t.Fatalf("waiting service: %v", got.err)
	}
	t.Cleanup(got.nc.Close)
	for _, bucket := range []string{stream.StatusBucket, stream.LeaseBucket} {
		if _, err := got.js.KeyValue(t.Context(), bucket); err != nil {
			t.Errorf("bucket %s after the owner connected: %v", bucket, err)
		}
	}
	if n := strings.Count(logs.String(), "JetStream not ready"); n != 1 {
		t.Errorf("the waiting service logged %d times that it waits, want once:\n%s", n, logs)
	}
}

func TestConnectWithNeverShowsThePassword(t *testing.T) {
	srv := natsembed.StartForTest(t, func(o *server.Options) { o.Username, o.Password = "org-model", "right-password" })
	addr := srv.Addr().(*net.TCPAddr)
	logs := &syncBuffer{}
	logger := logging.New(logs, "org-model", slog.LevelInfo)

	// The attempt with a wrong password has to fail, and say so without the password.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	url := "nats://org-model:wrong-password@127.0.0.1:" + itoa(addr.Port)
	_, _, err := stream.ConnectWith(ctx, url, "org-model", stream.ClientConfig{}, stream.DefaultConfig(), logger)
	if err == nil {
		t.Fatal("connected with a wrong password")
	}
	if strings.Contains(err.Error(), "wrong-password") || strings.Contains(logs.String(), "wrong-password") {
		t.Errorf("the password appears:\nerror: %v\nlogs: %s", err, logs)
	}

	passwordFile := writeFile(t, t.TempDir(), "password", "right-password\n")
	nc, _, err := stream.ConnectWith(t.Context(), "nats://127.0.0.1:"+itoa(addr.Port), "org-model",
		stream.ClientConfig{User: "org-model", PasswordFile: passwordFile}, stream.DefaultConfig(), logger)
	if err != nil {
		t.Fatalf("NATS_USER and NATS_PASSWORD_FILE: %v", err)
	}
	nc.Close()
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestConnectWithMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	caFile := writeFile(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})))
	serverCert := issue(t, ca, caKey, "nats", []string{"127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	clientCertFile, clientKeyFile := writePair(t, dir, "client", issue(t, ca, caKey, "org-model", nil, x509.ExtKeyUsageClientAuth))
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	srv := natsembed.StartForTest(t, func(o *server.Options) {
		o.TLS, o.TLSVerify, o.TLSTimeout = true, true, 2
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	})
	url := "tls://127.0.0.1:" + itoa(srv.Addr().(*net.TCPAddr).Port)
	logger := logging.New(&syncBuffer{}, "org-model", slog.LevelInfo)

	t.Run("with the CA and a client certificate", func(t *testing.T) {
		nc, js, err := stream.ConnectWith(t.Context(), url, "org-model",
			stream.ClientConfig{CAFile: caFile, CertFile: clientCertFile, KeyFile: clientKeyFile}, stream.DefaultConfig(), logger)
		if err != nil {
			t.Fatalf("mutual TLS: %v", err)
		}
		defer nc.Close()
		if !nc.TLSRequired() {
			t.Error("connection is not TLS")
		}
		if _, err := js.Stream(t.Context(), stream.HR); err != nil {
			t.Errorf("stream HR over TLS: %v", err)
		}
	})
	t.Run("without a client certificate", func(t *testing.T) {
		// The server refuses the handshake: the service keeps retrying until it gives up.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		nc, _, err := stream.ConnectWith(ctx, url, "org-model", stream.ClientConfig{CAFile: caFile}, stream.DefaultConfig(), logger)
		if err == nil {
			nc.Close()
			t.Fatal("connected without a client certificate")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error = %v, want the wait to end with the context", err)
		}
	})
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "orgsync test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, ips []string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	for _, ip := range ips {
		template.IPAddresses = append(template.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePair(t *testing.T, dir, name string, cert tls.Certificate) (string, string) {
	t.Helper()
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, name+".pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}))),
		writeFile(t, dir, name+"-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
}
