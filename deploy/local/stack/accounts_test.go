package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"google.golang.org/protobuf/proto"

	"github.com/orgsync/orgsync/deploy/local/stack"
	"github.com/orgsync/orgsync/pkg/converge"
	"github.com/orgsync/orgsync/pkg/logging"
	"github.com/orgsync/orgsync/pkg/natsembed"
	"github.com/orgsync/orgsync/pkg/stream"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	hringest "github.com/orgsync/orgsync/services/hr-ingest/service"
	"github.com/orgsync/orgsync/services/hr-ingest/vendortest"
)

// exampleNATSConfig is the example configuration the tests load as it is shipped.
const exampleNATSConfig = "../../nats/nats-server.conf"

// serviceUsers are the users of the example configuration, by service name, with the variable
// that carries each one's public nkey.
var serviceUsers = map[string]string{
	"hr-ingest":    "ORGSYNC_NKEY_HR_INGEST",
	"org-model":    "ORGSYNC_NKEY_ORG_MODEL",
	"entra-writer": "ORGSYNC_NKEY_ENTRA_WRITER",
	"ad-writer":    "ORGSYNC_NKEY_AD_WRITER",
}

// accountClients generates a fresh nkey per service, puts the public keys where the example
// configuration reads them (the environment), and returns each service's client configuration:
// org-model creates the streams, the others wait for them.
func accountClients(t *testing.T) map[string]stream.ClientConfig {
	t.Helper()
	dir := t.TempDir()
	clients := map[string]stream.ClientConfig{}
	for service, variable := range serviceUsers {
		user, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, err := user.Seed()
		if err != nil {
			t.Fatal(err)
		}
		public, err := user.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		seedFile := filepath.Join(dir, service+".nk")
		if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(variable, public)
		clients[service] = stream.ClientConfig{NKeySeedFile: seedFile, WaitForStreams: service != "org-model"}
	}
	return clients
}

// violations collects the permission violations the server reports to one connection.
type violations chan error

// connectAs connects to srv as service's user, the way pkg/stream does, and returns its
// JetStream and the permission violations reported to it.
func connectAs(t *testing.T, url, service string, client stream.ClientConfig) (*nats.Conn, jetstream.JetStream, violations) {
	t.Helper()
	errs := make(violations, 16)
	opt, err := nats.NkeyOptionFromSeed(client.NKeySeedFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opt, nats.CustomInboxPrefix("_INBOX."+service),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				select {
				case errs <- err:
				default:
				}
			}
		}))
	if err != nil {
		t.Fatalf("%s connects: %v", service, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, errs
}

// expectViolation waits for the server's permission violation naming subject.
func (v violations) expect(t *testing.T, operation, subject string) {
	t.Helper()
	want := fmt.Sprintf("%s to %q", operation, subject)
	for {
		select {
		case err := <-v:
			if strings.Contains(err.Error(), want) {
				return
			}
		case <-t.Context().Done():
			t.Fatalf("no permissions violation for %s", want)
		}
	}
}

func shortContext(t *testing.T) context.Context {
	t.Helper()
	// Long enough for an answer that comes, short enough for a request the server drops.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestExampleNATSAccountsLimitEachServiceToItsSubjects(t *testing.T) {
	clients := accountClients(t)
	srv := natsembed.StartFromConfigFileForTest(t, exampleNATSConfig)
	url := srv.ClientURL()

	// org-model's user creates the streams, as their owner.
	ownerConn, owner, err := stream.ConnectWith(t.Context(), url, "org-model", clients["org-model"], stream.DefaultConfig(), logging.New(os.Stderr, "test", slog.LevelError))
	if err != nil {
		t.Fatalf("org-model creates the streams: %v", err)
	}
	t.Cleanup(ownerConn.Close)
	msgs := func(name string) uint64 {
		t.Helper()
		s, err := owner.Stream(t.Context(), name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		return s.CachedInfo().State.Msgs
	}

	_, hrIngest, hrIngestViolations := connectAs(t, url, "hr-ingest", clients["hr-ingest"])
	_, entraWriter, entraViolations := connectAs(t, url, "entra-writer", clients["entra-writer"])
	_, adWriter, adViolations := connectAs(t, url, "ad-writer", clients["ad-writer"])

	t.Run("hr-ingest publishes HR events", func(t *testing.T) {
		if _, err := hrIngest.Publish(t.Context(), "hr.local.worker.E1", []byte("{}")); err != nil {
			t.Fatalf("publish to hr.>: %v", err)
		}
	})
	t.Run("hr-ingest cannot publish desired state", func(t *testing.T) {
		if _, err := hrIngest.Publish(shortContext(t), "dir.entra.user.E1", []byte("{}")); err == nil {
			t.Fatal("publish to dir.entra.user.E1 was acknowledged")
		}
		hrIngestViolations.expect(t, "Publish", "dir.entra.user.E1")
		if n := msgs(stream.Directory); n != 0 {
			t.Errorf("DIRECTORY holds %d messages, want 0", n)
		}
	})
	t.Run("hr-ingest cannot create a stream", func(t *testing.T) {
		if _, err := hrIngest.CreateStream(shortContext(t), jetstream.StreamConfig{Name: "SNEAKY", Subjects: []string{"sneaky.>"}}); err == nil {
			t.Fatal("hr-ingest created a stream")
		}
		hrIngestViolations.expect(t, "Publish", "$JS.API.STREAM.CREATE.SNEAKY")
	})
	t.Run("hr-ingest cannot read other services' replies", func(t *testing.T) {
		nc, _, errs := connectAs(t, url, "hr-ingest", clients["hr-ingest"])
		if _, err := nc.Subscribe("_INBOX.org-model.>", func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		errs.expect(t, "Subscription", "_INBOX.org-model.>")
	})
	for _, writer := range []struct {
		name, target, other string
		js                  jetstream.JetStream
		violations          violations
	}{
		{"entra-writer", "entra", "ad", entraWriter, entraViolations},
		{"ad-writer", "ad", "entra", adWriter, adViolations},
	} {
		t.Run(writer.name+" cannot publish HR events", func(t *testing.T) {
			before := msgs(stream.HR)
			if _, err := writer.js.Publish(shortContext(t), "hr.local.worker.E2", []byte("{}")); err == nil {
				t.Fatal("publish to hr.local.worker.E2 was acknowledged")
			}
			writer.violations.expect(t, "Publish", "hr.local.worker.E2")
			if n := msgs(stream.HR); n != before {
				t.Errorf("HR went from %d to %d messages", before, n)
			}
		})
		t.Run(writer.name+" cannot publish vendor notifications", func(t *testing.T) {
			subject := "hrnotify.pending.bob.E2"
			if _, err := writer.js.Publish(shortContext(t), subject, []byte("{}")); err == nil {
				t.Fatalf("publish to %s was acknowledged", subject)
			}
			writer.violations.expect(t, "Publish", subject)
		})
		t.Run(writer.name+" cannot delete a stream", func(t *testing.T) {
			if err := writer.js.DeleteStream(shortContext(t), stream.HR); err == nil {
				t.Fatal("stream HR deleted")
			}
			writer.violations.expect(t, "Publish", "$JS.API.STREAM.DELETE.HR")
			msgs(stream.HR) // still there
		})
		t.Run(writer.name+" reports results of its own target only", func(t *testing.T) {
			if _, err := writer.js.Publish(t.Context(), "results."+writer.target+".user.E1", []byte("{}")); err != nil {
				t.Fatalf("publish a result: %v", err)
			}
			subject := "results." + writer.other + ".user.E1"
			if _, err := writer.js.Publish(shortContext(t), subject, []byte("{}")); err == nil {
				t.Fatalf("publish to %s was acknowledged", subject)
			}
			writer.violations.expect(t, "Publish", subject)
		})
		t.Run(writer.name+" cannot consume the other target", func(t *testing.T) {
			filter := "dir." + writer.other + ".>"
			if _, err := writer.js.CreateConsumer(shortContext(t), stream.Directory, jetstream.ConsumerConfig{
				Name: "peek", FilterSubject: filter, AckPolicy: jetstream.AckNonePolicy,
			}); err == nil {
				t.Fatalf("consumer on %s created", filter)
			}
			writer.violations.expect(t, "Publish", "$JS.API.CONSUMER.CREATE.DIRECTORY.peek."+filter)
		})
		t.Run(writer.name+" takes its own lease only", func(t *testing.T) {
			kv, err := writer.js.KeyValue(t.Context(), stream.LeaseBucket)
			if err != nil {
				t.Fatal(err)
			}
			lease := &converge.Lease{KV: kv, Key: writer.name, Holder: "test"}
			if _, err := lease.CurrentHolder(t.Context()); err != nil {
				t.Errorf("reading its own lease: %v", err)
			}
			other := map[string]string{"entra-writer": "ad-writer", "ad-writer": "entra-writer"}[writer.name]
			if _, err := kv.Put(shortContext(t), other, []byte("test")); err == nil {
				t.Fatalf("%s put %s's lease", writer.name, other)
			}
			writer.violations.expect(t, "Publish", "$KV."+stream.LeaseBucket+"."+other)
		})
	}
}

func TestPipelineConvergesWithAServiceUserEach(t *testing.T) {
	clients := accountClients(t)
	const (
		hibobSource = "bob"
		hibobSecret = "hibob-webhook-secret-0123456789"
		hibobToken  = "hibob-service-token-0123456789"
	)
	bob := vendortest.NewHiBob(t, "SERVICE-1", hibobToken)
	// An AFAS source hr-ingest polls: its cursor bucket and its lease, on hr-ingest's own user.
	afas := vendortest.NewAFAS(t, "Orgsync_Employees", vendortest.AFASToken("AFAS0123456789"), "Medewerker", "Roepnaam", "Achternaam", "Afdeling", "Begindatum", "Gewijzigd")
	afas.Put(map[string]any{"Medewerker": "A9001", "Roepnaam": "Ada", "Achternaam": "Afas", "Afdeling": "sales", "Begindatum": "2026-01-05", "Gewijzigd": "2026-01-04T09:00:00Z"})
	bob.Put("B7001", `{"id":"B7001","firstName":"Bea","surname":"Bobson","email":"bea.bobson@example.com",
		"work":{"title":"Analyst","department":"Sales","reportsTo":null,"startDate":"2026-01-05"},"internal":{"status":"Active"}}`)
	ctx, cancel := context.WithCancel(t.Context())
	logs := &syncBuffer{}
	s, err := stack.Start(ctx, stack.Options{
		StoreDir: t.TempDir(), NATSConfigFile: exampleNATSConfig, NATSClients: clients, LogWriter: logs,
		// A SCIM source (hr-ingest reads a worker's newest event on HR before storing a request)
		// and a CSV source (a snapshot takes its source's lock in hr-ingest's key-value bucket),
		// so that what those need of NATS is exercised on hr-ingest's own user too; and a HiBob
		// source, whose notifications hr-ingest keeps in its stream HR_NOTIFY and fetches from a
		// fake Bob API with a durable consumer of its own.
		Sources: []hringest.SourceConfig{
			{Name: scimSource, Kind: hringest.KindSCIM, Tokens: []string{scimToken}},
			{Name: csvSource, Kind: hringest.KindCSV, Tokens: []string{csvToken}},
			// Its accounts' UPN and mail are written back to Bob: hr-ingest follows RESULTS with
			// a durable consumer and keeps what it wrote in its own key-value bucket.
			{Name: hibobSource, Kind: hringest.KindHiBob, Keys: [][]byte{[]byte(hibobSecret)},
				API: hringest.SourceAPI{BaseURL: bob.BaseURL(), User: "SERVICE-1", Token: hibobToken},
				WriteBack: hringest.SourceWriteBack{Attributes: []hringest.WriteBackAttribute{hringest.WriteBackUPN, hringest.WriteBackMail},
					UsernameField: "work.custom.field_1690000000000"}},
			{Name: "afas", Kind: hringest.KindPoll, Poll: hringest.SourcePoll{Preset: "afas", URL: afas.ConnectorURL(), ModifiedField: "Gewijzigd",
				Auth:   hringest.SourcePollAuth{Secret: "AFAS0123456789"},
				Fields: map[string]string{"workerId": "Medewerker", "givenName": "Roepnaam", "familyName": "Achternaam", "orgUnitId": "Afdeling", "startDate": "Begindatum"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	for id, body := range map[string][]byte{
		"unit-commercial": event("org_unit.created", map[string]any{"orgUnitId": "commercial", "name": "Commercial"}),
		"unit-sales":      event("org_unit.created", map[string]any{"orgUnitId": "sales", "name": "Sales", "parentOrgUnitId": "commercial"}),
		"msg_hire_1":      hire,
	} {
		resp, respBody, err := stack.Post(ctx, client, s.WebhookURL(), id, body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook %s: %d %s", id, resp.StatusCode, respBody)
		}
	}
	postBulk(t, s, bulkRequest(scimUser("701001", "Ana", "Jones", "Contoso", "Sales", "EMEA")))
	// Sent twice: the second is a retry of a state already stored, found by reading HR.
	postBulk(t, s, bulkRequest(scimUser("701001", "Ana", "Jones", "Contoso", "Sales", "EMEA")))
	csvReq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.HRIngest.HTTPAddr()+"/v1/sources/"+csvSource+"/snapshots",
		strings.NewReader("workerId,givenName,familyName,orgUnitId,employmentStatus,startDate\nX1,Xena,One,sales,active,2026-01-05\n"))
	if err != nil {
		t.Fatal(err)
	}
	csvReq.Header.Set("Content-Type", "text/csv")
	csvReq.Header.Set("Authorization", "Bearer "+csvToken)
	csvResp, err := client.Do(csvReq)
	if err != nil {
		t.Fatal(err)
	}
	csvResp.Body.Close()
	if csvResp.StatusCode != http.StatusAccepted {
		t.Fatalf("CSV snapshot: %d", csvResp.StatusCode)
	}
	notification := []byte(`{"companyId":601234,"type":"employee.created","triggeredBy":"1","triggeredAt":"2026-01-05T09:00:00Z","version":"v2","data":{"employeeId":"B7001"}}`)
	bobReq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.HRIngest.HTTPAddr()+"/v1/sources/"+hibobSource+"/events", bytes.NewReader(notification))
	if err != nil {
		t.Fatal(err)
	}
	bobReq.Header.Set("Content-Type", "application/json")
	vendortest.SignHiBob(bobReq.Header, []byte(hibobSecret), notification)
	bobResp, err := client.Do(bobReq)
	if err != nil {
		t.Fatal(err)
	}
	bobResp.Body.Close()
	if bobResp.StatusCode != http.StatusAccepted {
		t.Fatalf("HiBob notification: %d", bobResp.StatusCode)
	}
	eventually(t, func() bool {
		_, scimOK := s.Emulator.UserByEmployeeID("701001")
		_, csvOK := s.Emulator.UserByEmployeeID("X1")
		_, bobOK := s.Emulator.UserByEmployeeID("B7001")
		_, afasOK := s.Emulator.UserByEmployeeID("A9001")
		return scimOK && csvOK && bobOK && afasOK
	})
	// hr-ingest reads its stream HR_NOTIFY for the fetch status: nothing pending, nothing parked.
	statusReq, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.HRIngest.HTTPAddr()+"/v1/pull/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	statusReq.Header.Set("Authorization", "Bearer "+s.AdminToken)
	statusResp, err := client.Do(statusReq)
	if err != nil {
		t.Fatal(err)
	}
	var pullStatus struct {
		Sources []struct {
			Source          string
			Pending, Parked int64
		}
	}
	err = json.NewDecoder(statusResp.Body).Decode(&pullStatus)
	statusResp.Body.Close()
	if err != nil || statusResp.StatusCode != http.StatusOK {
		t.Fatalf("pull status: %d, %v", statusResp.StatusCode, err)
	}
	if len(pullStatus.Sources) != 1 || pullStatus.Sources[0].Source != hibobSource || pullStatus.Sources[0].Pending != 0 || pullStatus.Sources[0].Parked != 0 {
		t.Errorf("pull status %+v, want source %s with nothing pending or parked", pullStatus, hibobSource)
	}
	// The Bob employee's account is written back to Bob: org-model named the worker's source on
	// the desired user, entra-writer copied it to its result, hr-ingest wrote the UPN to the
	// configured field (the e-mail Bob already holds answers 304) and audited it on audit.hr.>.
	eventually(t, func() bool {
		for _, update := range bob.Updates() {
			if update.EmployeeID == "B7001" && update.Path == "" {
				return true
			}
		}
		return false
	})
	eventually(t, func() bool {
		user, ok := s.Emulator.UserByEmployeeID("E1001")
		group, groupOK := s.Emulator.GroupByMailNickname("orgsync-unit-sales")
		return ok && groupOK && contains(s.Emulator.Members(group["id"].(string)), user["id"].(string))
	})
	// The writer's result reached RESULTS through its own user.
	_, owner, _ := connectAs(t, s.NATS.ClientURL(), "org-model", clients["org-model"])
	results, err := owner.Stream(t.Context(), stream.Results)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		msg, err := results.GetLastMsgForSubject(t.Context(), "results.entra.user.E1001")
		if err != nil {
			return false
		}
		var result orgsyncv1.WriterResult
		return proto.Unmarshal(msg.Data, &result) == nil && result.GetObjectId() != ""
	})
	if strings.Contains(logs.String(), "Permissions Violation") {
		t.Errorf("a service hit a permissions violation:\n%s", violationLines(logs.String()))
	}
}

func violationLines(logs string) string {
	var lines []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "Permissions Violation") {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}
