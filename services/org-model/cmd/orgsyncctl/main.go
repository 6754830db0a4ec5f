// Command orgsyncctl asks org-model questions and approves its held changes, over its gRPC API:
//
//	orgsyncctl [--addr host:port] [--token-file FILE] [--ca-file FILE [--cert FILE --key FILE]] [--json] <command> [arguments]
//
// It authenticates with a bearer token: --token-file, else $ORGSYNC_TOKEN, else the default token
// file ($XDG_CONFIG_HOME/orgsync/token or ~/.config/orgsync/token, where `make run` writes its dev
// token). With --ca-file it speaks TLS and checks org-model's certificate against that CA; --cert
// and --key add a client certificate for servers that require one (GRPC_TLS_CLIENT_CA_FILE).
//
// Commands: status, worker ID, workers [--unit ID], unit ID, tree [--root ID], members GROUP,
// explain GROUP WORKER, plan (--events FILE | --policy FILE), pending, approve BATCH, reject BATCH,
// audit [--worker ID | --group KEY] [--since T] [--until T], delegate WORKER (--from WORKER |
// --from-unit UNIT) --start DATE --end DATE --reason TEXT, delegations [--worker ID],
// end-delegation ID, request-access WORKER (--group KEY --until DATE | --tap | --password-reset) --reason TEXT, requests,
// approve-request ID, reject-request ID.
// Tables are for people; --json prints the API's answer as JSON, for scripts.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orgsync/orgsync/pkg/auth"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
	"github.com/orgsync/orgsync/proto/orgsync/v1/orgsyncv1grpc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orgsyncctl:", err)
		os.Exit(1)
	}
}

const usage = `usage: orgsyncctl [--addr host:port] [--token-file FILE] [--ca-file FILE] [--cert FILE --key FILE]
                  [--json] [--target entra|ad] <command> [arguments]

credentials: --token-file, else $ORGSYNC_TOKEN, else $XDG_CONFIG_HOME/orgsync/token (~/.config/orgsync/token)

commands:
  status                      replay state, sizes, unresolved references, pending batches
  worker ID                   a worker's HR record, lifecycle phase and accounts
  workers [--unit ID]         list workers
  unit ID                     an org unit, its path, children and groups
  tree [--root ID]            the org tree
  members GROUP               a group's desired members
  explain GROUP WORKER        why a worker is (or is not) in a group
  plan --events FILE          the changes HR events (a JSON HREvent or array of them) would make
  plan --policy FILE          the changes a policy file would make
  pending                     the batches the mass-change guard holds
  approve BATCH               publish a held batch
  reject BATCH                drop a held batch
  audit [--worker ID | --group KEY] [--since TIME] [--until TIME] [--limit N]
                              the directory writes recorded on stream AUDIT, oldest first, with
                              the HR event and trace behind each (TIME: RFC 3339 or a duration ago, e.g. 24h)
  delegate WORKER (--from WORKER | --from-unit UNIT) --start DATE --end DATE --reason TEXT
                              give WORKER another worker's (or a unit's) memberships from DATE
                              until DATE (YYYY-MM-DD; removed on the end date); operator
  delegations [--worker ID]   the delegations, with who created and ended them
  end-delegation ID           end a delegation now; operator
  request-access WORKER --group KEY --until DATE --reason TEXT [--approval-window 24h]
  request-access WORKER --tap [--lifetime 1h] --reason TEXT
  request-access WORKER --password-reset --reason TEXT
                              ask for a temporary membership, a one-time Temporary Access Pass or
                              a password reset (delivered to the configured channel, never to
                              you); a second person approves; operator
  requests                    the helpdesk requests, pending and decided
  approve-request ID          approve someone else's request; approver
  reject-request ID           reject a request; approver`

// run executes one command; it is main without the process.
func run(ctx context.Context, args []string, out io.Writer) error {
	flags := flag.NewFlagSet("orgsyncctl", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	addr := flags.String("addr", envOr("ORGSYNC_ADDR", "127.0.0.1:9091"), "org-model's gRPC address (ORGSYNC_ADDR)")
	asJSON := flags.Bool("json", false, "print JSON")
	targetName := flags.String("target", "entra", "directory target: entra or ad")
	timeout := flags.Duration("timeout", 30*time.Second, "how long to wait for an answer")
	tokenFile := flags.String("token-file", "", "file holding the bearer token (default $ORGSYNC_TOKEN, else the default token file)")
	caFile := flags.String("ca-file", "", "CA of org-model's certificate: speak TLS")
	certFile := flags.String("cert", "", "client certificate for mutual TLS (with --key)")
	keyFile := flags.String("key", "", "client key for mutual TLS (with --cert)")
	serverName := flags.String("server-name", "", "name to check org-model's certificate against (default: the host of --addr)")
	if err := flags.Parse(args); err != nil {
		return fmt.Errorf("%w\n%s", err, usage)
	}
	if flags.NArg() == 0 {
		return errors.New(usage)
	}
	target := orgsyncv1.Target_TARGET_ENTRA
	switch *targetName {
	case "entra":
	case "ad":
		target = orgsyncv1.Target_TARGET_AD
	default:
		return fmt.Errorf("--target %q is not entra or ad", *targetName)
	}
	token, tokenSource, err := findToken(*tokenFile)
	if err != nil {
		return err
	}
	transport, err := transportCredentials(*caFile, *certFile, *keyFile, *serverName)
	if err != nil {
		return err
	}
	options := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	if token != "" {
		options = append(options, grpc.WithPerRPCCredentials(auth.Bearer(token)))
	}
	conn, err := grpc.NewClient(*addr, options...)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	targetSet := false
	flags.Visit(func(f *flag.Flag) { targetSet = targetSet || f.Name == "target" })
	c := &cli{api: orgsyncv1grpc.NewOrgModelServiceClient(conn), out: out, json: *asJSON, target: target, targetSet: targetSet}
	command, rest := flags.Arg(0), flags.Args()[1:]
	handler, ok := map[string]func(context.Context, []string) error{
		"status": c.status, "worker": c.worker, "workers": c.workers, "unit": c.unit, "tree": c.tree,
		"members": c.members, "explain": c.explain, "plan": c.plan, "pending": c.pending, "approve": c.approve, "reject": c.reject,
		"audit": c.audit, "delegate": c.delegate, "delegations": c.delegations, "end-delegation": c.endDelegation,
		"request-access": c.requestAccess, "requests": c.requests,
		"approve-request": c.decideRequest(orgsyncv1.Decision_DECISION_APPROVED), "reject-request": c.decideRequest(orgsyncv1.Decision_DECISION_REJECTED),
	}[command]
	if !ok {
		return fmt.Errorf("unknown command %q\n%s", command, usage)
	}
	return explainRefusal(handler(ctx, rest), tokenSource)
}

// findToken returns the bearer token and where it came from: --token-file, else ORGSYNC_TOKEN,
// else the default token file when it exists. No token at all is not an error here: org-model
// answers Unauthenticated, and explainRefusal says where a token would be looked for.
func findToken(tokenFile string) (token, source string, err error) {
	if tokenFile != "" {
		token, err := auth.ReadTokenFile(tokenFile)
		return token, "--token-file " + tokenFile, err
	}
	if token := strings.TrimSpace(os.Getenv("ORGSYNC_TOKEN")); token != "" {
		return token, "ORGSYNC_TOKEN", nil
	}
	path, err := auth.DefaultTokenFile()
	if err != nil {
		return "", "", nil
	}
	if _, statErr := os.Stat(path); statErr != nil {
		return "", "", nil
	}
	token, err = auth.ReadTokenFile(path)
	return token, path, err
}

// explainRefusal adds to an authentication or permission error what the user can do about it.
func explainRefusal(err error, tokenSource string) error {
	switch status.Code(err) {
	case codes.Unauthenticated:
		if tokenSource == "" {
			defaultFile, _ := auth.DefaultTokenFile()
			return fmt.Errorf("%w\n(no token given: use --token-file, ORGSYNC_TOKEN or %s)", err, defaultFile)
		}
		return fmt.Errorf("%w\n(the token from %s was refused)", err, tokenSource)
	case codes.PermissionDenied:
		return fmt.Errorf("%w\n(the token from %s lacks the role)", err, tokenSource)
	}
	return err
}

// transportCredentials is plaintext without a CA, else TLS checked against the CA, with a client
// certificate when one is given.
func transportCredentials(caFile, certFile, keyFile, serverName string) (credentials.TransportCredentials, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if caFile == "" {
		if certFile != "" {
			return nil, errors.New("--cert and --key need --ca-file: client certificates are only sent over TLS")
		}
		return insecure.NewCredentials(), nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", caFile)
	}
	config := &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		config.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(config), nil
}

// who names a principal for people: the OIDC subject and its issuer, or the static token's name.
func who(p *orgsyncv1.Principal) string {
	switch {
	case p.GetTokenName() != "":
		return "token " + p.GetTokenName()
	case p.GetSubject() != "":
		return p.GetSubject() + " (" + p.GetIssuer() + ")"
	default:
		return "-"
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type cli struct {
	api    orgsyncv1grpc.OrgModelServiceClient
	out    io.Writer
	json   bool
	target orgsyncv1.Target
	// targetSet says --target was given; audit then lists that target only.
	targetSet bool
}

func args(rest []string, names ...string) error {
	if len(rest) != len(names) {
		return fmt.Errorf("expected %s", strings.Join(names, " "))
	}
	return nil
}

// print writes resp as JSON with --json, else calls table.
func (c *cli) print(resp proto.Message, table func(w *tabwriter.Writer)) error {
	if c.json {
		data, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(resp)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(c.out, string(data))
		return err
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

func ts(t interface{ AsTime() time.Time }, set bool) string {
	if !set {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) status(ctx context.Context, rest []string) error {
	resp, err := c.api.GetStatus(ctx, &orgsyncv1.GetStatusRequest{})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "caught up\t%v\norg units\t%d\nworkers\t%d\ndesired objects\t%d\npending batches\t%d\nfailed writes\t%d\nnext transition\t%s\npolicy\t%s\n",
			resp.GetCaughtUp(), resp.GetOrgUnits(), resp.GetWorkers(), resp.GetDesiredObjects(), resp.GetPendingBatches(), resp.GetFailedWrites(),
			ts(resp.GetNextTransition(), resp.GetNextTransition() != nil), resp.GetPolicyFile())
		fmt.Fprintf(w, "audit records\t%d\nlast write\t%s\n", resp.GetAuditRecords(), ts(resp.GetLastWrite(), resp.GetLastWrite() != nil))
		if len(resp.GetServices()) > 0 {
			fmt.Fprintln(w, "\nSERVICE\tINSTANCE\tREADY\tSTATE\tDEAD LETTERS\tLAST DRIFT RECONCILE\tREPORTED\tWHY")
			for _, svc := range resp.GetServices() {
				why := svc.GetNotReadyReason()
				if svc.GetPausedReason() != "" {
					why = svc.GetPausedReason()
				}
				fmt.Fprintf(w, "%s\t%s\t%v\t%s\t%d\t%s\t%s\t%s\n", svc.GetService(), svc.GetInstance(), svc.GetReady(), dash(svc.GetState()),
					svc.GetDeadLetters(), ts(svc.GetLastDriftReconcile(), svc.GetLastDriftReconcile() != nil), ts(svc.GetUpdatedAt(), svc.GetUpdatedAt() != nil), dash(why))
			}
		}
		if len(resp.GetStreams()) > 0 {
			fmt.Fprintln(w, "\nSTREAM\tMESSAGES\tCONSUMER\tLAG\tUNACKED\tREDELIVERED")
			for _, st := range resp.GetStreams() {
				fmt.Fprintf(w, "%s\t%d\t-\t-\t-\t-\n", st.GetStream(), st.GetMessages())
				for _, consumer := range st.GetConsumers() {
					fmt.Fprintf(w, "\t\t%s\t%d\t%d\t%d\n", consumer.GetName(), consumer.GetPending(), consumer.GetAckPending(), consumer.GetRedelivered())
				}
			}
		}
		if len(resp.GetIdentifierProblems()) > 0 {
			fmt.Fprintln(w, "\nFAILED WORKER\tTARGET\tIDENTIFIER\tREASON")
			for _, p := range resp.GetIdentifierProblems() {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.GetWorkerId(), targetLabel(p.GetTarget()), p.GetProperty(), p.GetReason())
			}
		}
		if len(resp.GetProblems()) > 0 {
			fmt.Fprintln(w, "\nPROBLEM\tREASON")
			for _, p := range resp.GetProblems() {
				fmt.Fprintf(w, "%s\t%s\n", p.GetSubject(), p.GetReason())
			}
		}
	})
}

func (c *cli) worker(ctx context.Context, rest []string) error {
	if err := args(rest, "WORKER_ID"); err != nil {
		return err
	}
	resp, err := c.api.GetWorker(ctx, &orgsyncv1.GetWorkerRequest{WorkerId: rest[0]})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		wk := resp.GetWorker()
		fmt.Fprintf(w, "worker\t%s\nname\t%s %s\nunit\t%s\nmanager\t%s\ntitle\t%s\nphase\t%s\nnext change\t%s\n",
			wk.GetWorkerId(), wk.GetName().GetGivenName(), wk.GetName().GetFamilyName(), dash(wk.GetOrgUnitId()), dash(wk.GetManagerWorkerId()),
			dash(wk.GetJobTitle()), enumName(resp.GetPhase(), "LIFECYCLE_PHASE_"), ts(resp.GetNextChange(), resp.GetNextChange() != nil))
		for _, s := range resp.GetScheduled() {
			fmt.Fprintf(w, "scheduled\t%s: unit %s, title %s\n", ts(s.GetEffectiveAt(), true), s.GetWorker().GetOrgUnitId(), s.GetWorker().GetJobTitle())
		}
		fmt.Fprintln(w, "\nTARGET\tUPN\tENABLED\tREVISION\tGROUPS\tLAST RESULT")
		for _, a := range resp.GetAccounts() {
			result := "-"
			if r := a.GetLastResult(); r != nil {
				result = strings.TrimPrefix(r.GetOutcome().String(), "OUTCOME_") + " rev " + fmt.Sprint(r.GetRevision())
			}
			if p := a.GetIdentifierProblem(); p != nil {
				result = "FAILED: no valid " + p.GetProperty() + ": " + p.GetReason()
			}
			fmt.Fprintf(w, "%s\t%s\t%v\t%d\t%s\t%s\n", targetLabel(a.GetTarget()), dash(a.GetDesired().GetUserPrincipalName()),
				a.GetDesired().GetAccountEnabled(), a.GetRevision(), dash(strings.Join(a.GetGroupKeys(), ",")), result)
		}
		var licenseErrors []string
		for _, a := range resp.GetAccounts() {
			for _, e := range a.GetLicenseErrors() {
				licenseErrors = append(licenseErrors, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\n", targetLabel(a.GetTarget()), e.GetGroupKey(), e.GetSkuId(),
					enumName(e.GetError(), "LICENSE_ASSIGNMENT_ERROR_"), ts(e.GetObservedAt(), e.GetObservedAt() != nil)))
			}
		}
		if len(licenseErrors) > 0 {
			fmt.Fprintln(w, "\nLICENCE ERRORS\nTARGET\tGROUP\tSKU\tERROR\tSEEN")
			for _, line := range licenseErrors {
				fmt.Fprint(w, line)
			}
		}
	})
}

func targetLabel(t orgsyncv1.Target) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "TARGET_"))
}

func (c *cli) workers(ctx context.Context, rest []string) error {
	flags := flag.NewFlagSet("workers", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	unit := flags.String("unit", "", "only this org unit")
	if err := flags.Parse(rest); err != nil {
		return err
	}
	all := &orgsyncv1.ListWorkersResponse{}
	for token := ""; ; {
		resp, err := c.api.ListWorkers(ctx, &orgsyncv1.ListWorkersRequest{OrgUnitId: *unit, PageSize: 1000, PageToken: token})
		if err != nil {
			return err
		}
		all.Workers = append(all.Workers, resp.GetWorkers()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	return c.print(all, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "WORKER\tNAME\tUNIT\tTITLE\tPHASE\tUPN\tENABLED")
		for _, wk := range all.GetWorkers() {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", wk.GetWorkerId(), dash(wk.GetDisplayName()), dash(wk.GetOrgUnitId()), dash(wk.GetJobTitle()),
				enumName(wk.GetPhase(), "LIFECYCLE_PHASE_"), dash(wk.GetUserPrincipalName()), wk.GetAccountEnabled())
		}
	})
}

func (c *cli) unit(ctx context.Context, rest []string) error {
	if err := args(rest, "ORG_UNIT_ID"); err != nil {
		return err
	}
	resp, err := c.api.GetOrgUnit(ctx, &orgsyncv1.GetOrgUnitRequest{OrgUnitId: rest[0]})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "unit\t%s\nname\t%s\npath\t%s\nmanager\t%s\nworkers\t%d\nchildren\t%s\ngroups\t%s\n", resp.GetUnit().GetOrgUnitId(),
			resp.GetUnit().GetName(), strings.Join(resp.GetPath(), " > "), dash(resp.GetUnit().GetManagerWorkerId()), resp.GetWorkerCount(),
			dash(strings.Join(resp.GetChildOrgUnitIds(), ", ")), dash(strings.Join(resp.GetGroupKeys(), ", ")))
	})
}

func (c *cli) tree(ctx context.Context, rest []string) error {
	flags := flag.NewFlagSet("tree", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	root := flags.String("root", "", "start at this unit")
	depth := flags.Int("depth", 0, "levels to show (0: all)")
	if err := flags.Parse(rest); err != nil {
		return err
	}
	resp, err := c.api.GetOrgTree(ctx, &orgsyncv1.GetOrgTreeRequest{RootOrgUnitId: *root, MaxDepth: int32(*depth)})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "UNIT\tID\tMANAGER\tWORKERS")
		var walk func(n *orgsyncv1.OrgTreeNode, indent string)
		walk = func(n *orgsyncv1.OrgTreeNode, indent string) {
			fmt.Fprintf(w, "%s%s\t%s\t%s\t%d\n", indent, n.GetName(), n.GetOrgUnitId(), dash(n.GetManagerWorkerId()), n.GetWorkerCount())
			for _, child := range n.GetChildren() {
				walk(child, indent+"  ")
			}
		}
		for _, r := range resp.GetRoots() {
			walk(r, "")
		}
		for _, id := range resp.GetCycleOrgUnitIds() {
			fmt.Fprintf(w, "(cycle)\t%s\t-\t-\n", id)
		}
	})
}

func (c *cli) members(ctx context.Context, rest []string) error {
	if err := args(rest, "GROUP_KEY"); err != nil {
		return err
	}
	all := &orgsyncv1.ListGroupMembersResponse{}
	for token := ""; ; {
		resp, err := c.api.ListGroupMembers(ctx, &orgsyncv1.ListGroupMembersRequest{Target: c.target, GroupKey: rest[0], PageSize: 1000, PageToken: token})
		if err != nil {
			return err
		}
		all.Group = resp.GetGroup()
		all.Members = append(all.Members, resp.GetMembers()...)
		all.LicenseErrors, all.LicenseErrorsObservedAt = resp.GetLicenseErrors(), resp.GetLicenseErrorsObservedAt()
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	return c.print(all, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "group\t%s (%s)\n\nKIND\tMEMBER\tNAME\n", all.GetGroup().GetDisplayName(), all.GetGroup().GetGroupKey())
		for _, m := range all.GetMembers() {
			fmt.Fprintf(w, "%s\t%s\t%s\n", strings.ToLower(strings.TrimPrefix(m.GetMemberKind().String(), "MEMBER_KIND_")), m.GetMemberKey(), dash(m.GetDisplayName()))
		}
		if all.GetGroup().GetManageLicenses() {
			fmt.Fprintln(w, "\nLICENCE\tDISABLED PLANS")
			for _, license := range all.GetGroup().GetLicenses() {
				fmt.Fprintf(w, "%s\t%s\n", license.GetSkuId(), dash(strings.Join(license.GetDisabledPlanIds(), ",")))
			}
		}
		if len(all.GetLicenseErrors()) > 0 {
			fmt.Fprintf(w, "\nLICENCE ERRORS (seen %s)\nWORKER\tOBJECT ID\tSKU\tERROR\n", ts(all.GetLicenseErrorsObservedAt(), all.GetLicenseErrorsObservedAt() != nil))
			for _, e := range all.GetLicenseErrors() {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", dash(e.GetWorkerId()), e.GetMemberObjectId(), e.GetSkuId(), enumName(e.GetError(), "LICENSE_ASSIGNMENT_ERROR_"))
			}
		}
	})
}

func (c *cli) explain(ctx context.Context, rest []string) error {
	if err := args(rest, "GROUP_KEY", "WORKER_ID"); err != nil {
		return err
	}
	resp, err := c.api.ExplainMembership(ctx, &orgsyncv1.ExplainMembershipRequest{Target: c.target, GroupKey: rest[0], WorkerId: rest[1]})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "member\t%v\n", resp.GetMember())
		if len(resp.GetGroupPath()) > 0 {
			fmt.Fprintf(w, "through\t%s ∋ %s\n", strings.Join(resp.GetGroupPath(), " ⊃ "), rest[1])
		}
		fmt.Fprintf(w, "because\t%s\n", resp.GetReason())
	})
}

func (c *cli) plan(ctx context.Context, rest []string) error {
	flags := flag.NewFlagSet("plan", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	eventsFile := flags.String("events", "", "HR events: one HREvent as JSON, or a JSON array of them")
	policyFile := flags.String("policy", "", "a policy file")
	if err := flags.Parse(rest); err != nil {
		return err
	}
	req := &orgsyncv1.PlanRequest{}
	switch {
	case *policyFile != "":
		data, err := os.ReadFile(*policyFile)
		if err != nil {
			return err
		}
		req.PolicyYaml = string(data)
	case *eventsFile != "":
		events, err := readEvents(*eventsFile)
		if err != nil {
			return err
		}
		req.Events = events
	default:
		return errors.New("plan needs --events FILE or --policy FILE")
	}
	resp, err := c.api.Plan(ctx, req)
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%d changes: %d disables, %d removals\n\nACTION\tOBJECT\n", len(resp.GetChanges()), resp.GetDisables(), resp.GetRemovals())
		for _, change := range resp.GetChanges() {
			fmt.Fprintf(w, "%s\t%s\n", enumName(change.GetAction(), "CHANGE_ACTION_"), change.GetPath())
		}
	})
}

func readEvents(path string) ([]*orgsyncv1.HREvent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// An array is wrapped into a PlanRequest so protojson parses it in one go.
	if trimmed := strings.TrimSpace(string(data)); strings.HasPrefix(trimmed, "[") {
		var req orgsyncv1.PlanRequest
		if err := protojson.Unmarshal([]byte(`{"events":`+trimmed+`}`), &req); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return req.GetEvents(), nil
	}
	var event orgsyncv1.HREvent
	if err := protojson.Unmarshal(data, &event); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return []*orgsyncv1.HREvent{&event}, nil
}

func (c *cli) pending(ctx context.Context, rest []string) error {
	resp, err := c.api.ListPending(ctx, &orgsyncv1.ListPendingRequest{})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "BATCH\tCREATED\tDISABLES\tREMOVALS\tCAUSE\tREASON")
		for _, b := range resp.GetBatches() {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\n", b.GetBatchId(), ts(b.GetCreatedAt(), true), b.GetDisables(), b.GetRemovals(),
				dash(b.GetCause().GetReason()), b.GetReason())
		}
		if len(resp.GetDecided()) > 0 {
			fmt.Fprintln(w, "\nDECIDED\tAT\tDECISION\tBY\tDISABLES\tREMOVALS")
			for _, b := range resp.GetDecided() {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\n", b.GetBatchId(), ts(b.GetDecidedAt(), true), decision(b.GetDecision()),
					who(b.GetDecidedBy()), b.GetDisables(), b.GetRemovals())
			}
		}
	})
}

func decision(d orgsyncv1.Decision) string {
	return strings.ToLower(strings.TrimPrefix(d.String(), "DECISION_"))
}

func (c *cli) approve(ctx context.Context, rest []string) error {
	if err := args(rest, "BATCH_ID"); err != nil {
		return err
	}
	resp, err := c.api.Approve(ctx, &orgsyncv1.ApproveRequest{BatchId: rest[0]})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "approved %s by %s: %d changes published\n", rest[0], who(resp.GetBatch().GetDecidedBy()), resp.GetPublished())
	})
}

func (c *cli) reject(ctx context.Context, rest []string) error {
	if err := args(rest, "BATCH_ID"); err != nil {
		return err
	}
	resp, err := c.api.Reject(ctx, &orgsyncv1.RejectRequest{BatchId: rest[0]})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "rejected %s by %s: %d changes dropped\n", rest[0], who(resp.GetBatch().GetDecidedBy()), resp.GetDropped())
	})
}

func (c *cli) audit(ctx context.Context, rest []string) error {
	flags := flag.NewFlagSet("audit", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	workerID := flags.String("worker", "", "the writes to this worker's account and memberships")
	groupKey := flags.String("group", "", "the writes to this group and its memberships")
	since := flags.String("since", "", "from this time (RFC 3339) or this long ago (e.g. 24h)")
	until := flags.String("until", "", "before this time (RFC 3339) or this long ago")
	limit := flags.Int("limit", 0, "at most this many records (0: all)")
	if err := flags.Parse(rest); err != nil {
		return err
	}
	req := &orgsyncv1.ListAuditRequest{WorkerId: *workerID, GroupKey: *groupKey, PageSize: 1000}
	if c.targetSet {
		req.Target = c.target
	}
	for _, bound := range []struct {
		value string
		set   func(*timestamppb.Timestamp)
		name  string
	}{{*since, func(t *timestamppb.Timestamp) { req.Since = t }, "--since"}, {*until, func(t *timestamppb.Timestamp) { req.Until = t }, "--until"}} {
		if bound.value == "" {
			continue
		}
		at, err := parseTime(bound.value, time.Now())
		if err != nil {
			return fmt.Errorf("%s: %w", bound.name, err)
		}
		bound.set(timestamppb.New(at))
	}
	all := &orgsyncv1.ListAuditResponse{}
	for {
		resp, err := c.api.ListAudit(ctx, req)
		if err != nil {
			return err
		}
		all.Records = append(all.Records, resp.GetRecords()...)
		if *limit > 0 && len(all.Records) >= *limit {
			all.Records = all.Records[:*limit]
			break
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	return c.print(all, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "TIME\tOBJECT\tREVISION\tOUTCOME\tOPERATIONS\tHR EVENT\tREASON\tTRACE")
		for _, r := range all.GetRecords() {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", ts(r.GetRecordedAt(), true), r.GetPath(), r.GetResult().GetRevision(),
				strings.TrimPrefix(r.GetResult().GetOutcome().String(), "OUTCOME_"), dash(strings.Join(r.GetResult().GetOperations(), ",")),
				dash(r.GetCause().GetHrEventId()), dash(r.GetCause().GetReason()), dash(r.GetTraceId()))
		}
	})
}

// parseTime reads an RFC 3339 time, or a duration meaning that long before now.
func parseTime(value string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(value); err == nil {
		return now.Add(-d), nil
	}
	at, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", value)
	}
	return at, nil
}

// enumName is an enum value as people read it: LIFECYCLE_PHASE_PRE_CREATED is "pre-created".
func enumName(value fmt.Stringer, prefix string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(value.String(), prefix)), "_", "-")
}
