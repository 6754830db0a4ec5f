package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a CA with a server certificate for 127.0.0.1 and a client certificate, and a client
// certificate from another CA, for tests of TLS and mutual TLS.
type PKI struct {
	// CAFile, ServerCert and ServerKey are PEM files; ClientCert and ClientKey too (the client
	// certificate signed by the CA).
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string
	// Pool holds the CA.
	Pool *x509.CertPool
	// Client is signed by the CA; Stranger by another CA.
	Client, Stranger tls.Certificate
}

// NewPKI writes a CA, a server certificate for 127.0.0.1 and client certificates to a temporary
// directory.
func NewPKI(t testing.TB) PKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCA(t, "orgsync test CA")
	other, otherKey := newCA(t, "someone else's CA")
	pki := PKI{
		CAFile: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"), Pool: x509.NewCertPool(),
	}
	pki.Pool.AddCert(ca)
	writePEM(t, pki.CAFile, "CERTIFICATE", ca.Raw)
	serverDER, serverKey := issue(t, ca, caKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "org-model"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	writePEM(t, pki.ServerCert, "CERTIFICATE", serverDER)
	writeKey(t, pki.ServerKey, serverKey)
	clientTemplate := &x509.Certificate{Subject: pkix.Name{CommonName: "orgsyncctl"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	clientDER, clientKey := issue(t, ca, caKey, clientTemplate)
	pki.Client = tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}
	writePEM(t, pki.ClientCert, "CERTIFICATE", clientDER)
	writeKey(t, pki.ClientKey, clientKey)
	strangerDER, strangerKey := issue(t, other, otherKey, clientTemplate)
	pki.Stranger = tls.Certificate{Certificate: [][]byte{strangerDER}, PrivateKey: strangerKey}
	return pki
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
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

func issue(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, template *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template.SerialNumber = big.NewInt(time.Now().UnixNano())
	template.NotBefore, template.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	template.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t testing.TB, path string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "EC PRIVATE KEY", der)
}
