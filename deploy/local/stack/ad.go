package stack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/orgsync/orgsync/pkg/logging"
	adwriter "github.com/orgsync/orgsync/services/ad-writer/service"
)

// AD is the Active Directory domain ad-writer converges: a domain controller and an account that
// may create OUs, users and groups in it (the local stack's Samba DC and its administrator).
type AD struct {
	// URL is ldaps:// (or ldap://, upgraded with StartTLS); CAFile is the PEM CA its certificate
	// chains to.
	URL, CAFile string
	// BaseDN is the domain's DN, e.g. DC=corp,DC=example,DC=test.
	BaseDN               string
	BindDN, BindPassword string
}

// ADOUs are the OUs the local stack's ad-writer manages, in a domain.
type ADOUs struct {
	// Root is OU=orgsync below the domain; Users, Groups and Leavers are below Root.
	Root, Users, Groups, Leavers string
}

// NewADOUs returns the managed OUs in the domain baseDN.
func NewADOUs(baseDN string) ADOUs {
	root := "OU=orgsync," + baseDN
	return ADOUs{Root: root, Users: "OU=Users," + root, Groups: "OU=Groups," + root, Leavers: "OU=Leavers," + root}
}

// StartADWriter creates the managed OUs (NewADOUs) in the domain when they are missing and starts
// ad-writer on it with the stack's NATS, streams and dev token, on Ports.ADWriterHTTP,
// ADWriterGRPC and ADWriterAdmin (dead letters, drift). ctx must be the context Start was given (ad-writer stops with it), and
// StartADWriter must return before Wait is called. org-model publishes AD's desired state only
// when its policy (Options.PolicyFile) maps AD, as deploy/local/sample/policy-ad.yaml does;
// ad-writer's durable consumer then applies what was published before it started too.
func (s *Stack) StartADWriter(ctx context.Context, domain AD) error {
	ous := NewADOUs(domain.BaseDN)
	if err := createOUs(domain, ous.Root, ous.Users, ous.Groups, ous.Leavers); err != nil {
		return err
	}
	writerServer := s.serverConfig(adwriter.Name, s.opts.Ports.ADWriterHTTP, s.opts.Ports.ADWriterGRPC)
	writerServer.AdminAddr = addr(s.opts.Ports.ADWriterAdmin)
	cfg := adwriter.Config{
		NATSURL: s.natsURL, Streams: s.streams, NATS: s.opts.NATSClients[adwriter.Name],
		Server: writerServer, DriftInterval: 5 * time.Minute, PauseProbe: 5 * time.Second,
	}
	// The LDAP and writer settings are ad-writer's internal types: set field by field, as
	// ConfigFromEnv does from LDAP_* and AD_*.
	cfg.LDAP.URL, cfg.LDAP.CAFile = domain.URL, domain.CAFile
	cfg.LDAP.BindDN, cfg.LDAP.BindPassword = domain.BindDN, domain.BindPassword
	cfg.LDAP.PoolSize = 2
	cfg.Writer.BaseDN = domain.BaseDN
	cfg.Writer.UsersOU, cfg.Writer.GroupsOU, cfg.Writer.LeaversOU = ous.Users, ous.Groups, ous.Leavers
	cfg.Writer.ManagedOUs = []string{ous.Root}
	cfg.Writer.MustChangePassword = true
	cfg.Writer.MemberChunk = 500
	writer, err := adwriter.New(ctx, cfg, logging.New(s.opts.LogWriter, adwriter.Name, s.opts.LogLevel))
	if err != nil {
		return fmt.Errorf("ad-writer: %w", err)
	}
	s.ADWriter = writer
	s.run(ctx, writer.Run)
	return nil
}

// createOUs adds each OU (parents first) that does not exist yet.
func createOUs(domain AD, dns ...string) error {
	conn, err := dialAD(domain)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, dn := range dns {
		add := goldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", []string{"top", "organizationalUnit"})
		if err := conn.Add(add); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
			return fmt.Errorf("creating %s: %w", dn, err)
		}
	}
	return nil
}

// dialAD connects to the domain controller over TLS, verified against domain.CAFile, and binds.
func dialAD(domain AD) (*goldap.Conn, error) {
	pem, err := os.ReadFile(domain.CAFile)
	if err != nil {
		return nil, fmt.Errorf("the domain controller's CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", domain.CAFile)
	}
	u, err := url.Parse(domain.URL)
	if err != nil {
		return nil, fmt.Errorf("domain controller URL %q: %w", domain.URL, err)
	}
	tlsConfig := &tls.Config{RootCAs: roots, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	conn, err := goldap.DialURL(domain.URL, goldap.DialWithTLSConfig(tlsConfig))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", domain.URL, err)
	}
	conn.SetTimeout(30 * time.Second)
	if u.Scheme == "ldap" {
		if err := conn.StartTLS(tlsConfig); err != nil {
			conn.Close()
			return nil, fmt.Errorf("StartTLS with %s: %w", domain.URL, err)
		}
	}
	if err := conn.Bind(domain.BindDN, domain.BindPassword); err != nil {
		conn.Close()
		return nil, fmt.Errorf("binding to %s as %s: %w", domain.URL, domain.BindDN, err)
	}
	return conn, nil
}
