package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// The commands for delegations and helpdesk requests (docs/delegation.md, docs/helpdesk.md).

// parseDate reads an HR date, YYYY-MM-DD.
func parseDate(flagName, value string) (*orgsyncv1.Date, error) {
	if value == "" {
		return nil, fmt.Errorf("%s is required (YYYY-MM-DD)", flagName)
	}
	t, err := time.Parse("2006-01-02", value)
	if err != nil {
		return nil, fmt.Errorf("%s %q is not a date YYYY-MM-DD", flagName, value)
	}
	return &orgsyncv1.Date{Year: int32(t.Year()), Month: int32(t.Month()), Day: int32(t.Day())}, nil
}

func formatDate(d *orgsyncv1.Date) string {
	if d.GetYear() == 0 {
		return "-"
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

// leadingArg takes the one positional argument that comes before a command's flags.
func leadingArg(rest []string, name string) (string, []string, error) {
	if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
		return "", nil, fmt.Errorf("expected %s before the flags", name)
	}
	return rest[0], rest[1:], nil
}

func (c *cli) delegate(ctx context.Context, rest []string) error {
	delegate, rest, err := leadingArg(rest, "DELEGATE_WORKER_ID")
	if err != nil {
		return err
	}
	flags := flag.NewFlagSet("delegate", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	from := flags.String("from", "", "the worker whose memberships the delegate gets")
	fromUnit := flags.String("from-unit", "", "the org unit whose group the delegate joins")
	start := flags.String("start", "", "the first day (YYYY-MM-DD)")
	end := flags.String("end", "", "the day the memberships are removed (YYYY-MM-DD)")
	reason := flags.String("reason", "", "why (recorded in the audit trail)")
	if err := flags.Parse(rest); err != nil {
		return err
	}
	startDate, err := parseDate("--start", *start)
	if err != nil {
		return err
	}
	endDate, err := parseDate("--end", *end)
	if err != nil {
		return err
	}
	resp, err := c.api.CreateDelegation(ctx, &orgsyncv1.CreateDelegationRequest{DelegateWorkerId: delegate, FromWorkerId: *from,
		FromOrgUnitId: *fromUnit, StartDate: startDate, EndDate: endDate, Reason: *reason})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		d := resp.GetDelegation()
		fmt.Fprintf(w, "delegation %s created by %s: %s gets the memberships of %s from %s until %s (%s)\n", d.GetDelegationId(), who(d.GetCreatedBy()),
			d.GetDelegateWorkerId(), delegationSource(d), formatDate(d.GetStartDate()), formatDate(d.GetEndDate()), enumName(d.GetState(), "DELEGATION_STATE_"))
	})
}

func delegationSource(d *orgsyncv1.Delegation) string {
	if d.GetFromOrgUnitId() != "" {
		return "org unit " + d.GetFromOrgUnitId()
	}
	return d.GetFromWorkerId()
}

func (c *cli) delegations(ctx context.Context, rest []string) error {
	flags := flag.NewFlagSet("delegations", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	workerID := flags.String("worker", "", "only the delegations to or from this worker")
	if err := flags.Parse(rest); err != nil {
		return err
	}
	resp, err := c.api.ListDelegations(ctx, &orgsyncv1.ListDelegationsRequest{WorkerId: *workerID})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tDELEGATE\tFROM\tSTART\tEND\tSTATE\tCREATED BY\tENDED BY\tREASON")
		for _, d := range resp.GetDelegations() {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.GetDelegationId(), d.GetDelegateWorkerId(), delegationSource(d),
				formatDate(d.GetStartDate()), formatDate(d.GetEndDate()), enumName(d.GetState(), "DELEGATION_STATE_"), who(d.GetCreatedBy()),
				who(d.GetEndedBy()), d.GetReason())
		}
	})
}

func (c *cli) endDelegation(ctx context.Context, rest []string) error {
	if err := args(rest, "DELEGATION_ID"); err != nil {
		return err
	}
	resp, err := c.api.EndDelegation(ctx, &orgsyncv1.EndDelegationRequest{DelegationId: rest[0]})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "delegation %s ended by %s\n", rest[0], who(resp.GetDelegation().GetEndedBy()))
	})
}

func (c *cli) requestAccess(ctx context.Context, rest []string) error {
	workerID, rest, err := leadingArg(rest, "WORKER_ID")
	if err != nil {
		return err
	}
	flags := flag.NewFlagSet("request-access", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	group := flags.String("group", "", "the group of the temporary membership")
	until := flags.String("until", "", "the day the membership is removed (YYYY-MM-DD)")
	tap := flags.Bool("tap", false, "a one-time Temporary Access Pass instead of a membership")
	lifetime := flags.Duration("lifetime", 0, "the Temporary Access Pass's lifetime (default 1h, 10m to 24h)")
	reset := flags.Bool("password-reset", false, "a password reset instead of a membership")
	reason := flags.String("reason", "", "why, e.g. the ticket (recorded in the audit trail)")
	window := flags.Duration("approval-window", 0, "how long the request waits for approval (default 24h)")
	if err := flags.Parse(rest); err != nil {
		return err
	}
	req := &orgsyncv1.RequestAccessRequest{WorkerId: workerID, Reason: *reason, ApprovalWindowSeconds: int64(window.Seconds())}
	switch {
	case *tap && *reset:
		return errors.New("--tap and --password-reset: ask for one at a time")
	case (*tap || *reset) && (*group != "" || *until != ""):
		return errors.New("--group and --until are for a temporary membership, not with --tap or --password-reset")
	case *lifetime != 0 && !*tap:
		return errors.New("--lifetime is for --tap")
	case *tap:
		req.Kind, req.LifetimeMinutes = orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS, int32(lifetime.Minutes())
	case *reset:
		req.Kind = orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_PASSWORD_RESET
	default:
		if req.EndDate, err = parseDate("--until", *until); err != nil {
			return err
		}
		req.Kind, req.GroupKey = orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_MEMBERSHIP, *group
	}
	resp, err := c.api.RequestAccess(ctx, req)
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		r := resp.GetRequest()
		fmt.Fprintf(w, "request %s by %s: %s; waits for a second person's approval until %s\n", r.GetRequestId(), who(r.GetRequestedBy()),
			requestSummary(r), ts(r.GetExpiresAt(), r.GetExpiresAt() != nil))
	})
}

// requestSummary says what a request asks for, for whom.
func requestSummary(r *orgsyncv1.AccessRequest) string {
	switch r.GetKind() {
	case orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_TEMPORARY_ACCESS_PASS:
		return fmt.Sprintf("a Temporary Access Pass (%d min, one sign-in) for %s", r.GetLifetimeMinutes(), r.GetWorkerId())
	case orgsyncv1.AccessRequestKind_ACCESS_REQUEST_KIND_PASSWORD_RESET:
		return "a password reset for " + r.GetWorkerId()
	}
	return fmt.Sprintf("%s in %s until %s", r.GetWorkerId(), r.GetGroupKey(), formatDate(r.GetEndDate()))
}

func (c *cli) requests(ctx context.Context, rest []string) error {
	if err := args(rest); err != nil {
		return err
	}
	resp, err := c.api.ListAccessRequests(ctx, &orgsyncv1.ListAccessRequestsRequest{})
	if err != nil {
		return err
	}
	return c.print(resp, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tKIND\tWORKER\tGROUP\tUNTIL\tSTATE\tREQUESTED BY\tEXPIRES\tDECIDED BY\tREASON\tCREDENTIAL")
		for _, r := range resp.GetRequests() {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.GetRequestId(), enumName(r.GetKind(), "ACCESS_REQUEST_KIND_"),
				r.GetWorkerId(), r.GetGroupKey(), formatDate(r.GetEndDate()),
				enumName(r.GetState(), "ACCESS_REQUEST_STATE_"), who(r.GetRequestedBy()), ts(r.GetExpiresAt(), r.GetExpiresAt() != nil),
				who(r.GetDecidedBy()), r.GetReason(), credentialOutcome(r))
		}
	})
}

func (c *cli) decideRequest(decision orgsyncv1.Decision) func(context.Context, []string) error {
	return func(ctx context.Context, rest []string) error {
		if err := args(rest, "REQUEST_ID"); err != nil {
			return err
		}
		resp, err := c.api.DecideAccessRequest(ctx, &orgsyncv1.DecideAccessRequestRequest{RequestId: rest[0], Decision: decision})
		if err != nil {
			return err
		}
		return c.print(resp, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "request %s %s by %s\n", rest[0], enumName(resp.GetRequest().GetState(), "ACCESS_REQUEST_STATE_"), who(resp.GetRequest().GetDecidedBy()))
		})
	}
}

// credentialOutcome says how an approved credential request's credential stands: where it was
// delivered (never what), or why not; "-" for anything else.
func credentialOutcome(r *orgsyncv1.AccessRequest) string {
	if d := r.GetCredentialDelivery(); d != nil {
		to := d.GetChannelName()
		if d.GetRecipientWorkerId() != "" {
			to += " to " + d.GetRecipientWorkerId()
		}
		return fmt.Sprintf("delivered %s via %s (%s)", ts(d.GetDeliveredAt(), true), enumName(d.GetChannel(), "CREDENTIAL_CHANNEL_"), to)
	}
	if r.GetCredentialError() != "" {
		return r.GetCredentialError()
	}
	return "-"
}
