package graph

import (
	"context"
	"fmt"
	"slices"

	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
)

// userDeltaSelect asks for the user properties orgsync manages and the manager link changes.
var userDeltaSelect = append(slices.Clone(userSelect), "manager")

// groupDeltaSelect asks for the group properties orgsync manages and the member changes.
var groupDeltaSelect = []string{"id", "displayName", "description", "mailNickname", "assignedLicenses", "members"}

// UsersDelta reads one page of Graph's users delta query: the first page of a new round when link
// is empty, else the page link (a nextLink or a deltaLink from an earlier page) names. Reads are
// not writes: they are not charged to the write budget.
func (c *Client) UsersDelta(ctx context.Context, link string) (directory.DeltaPage[directory.UserDelta], error) {
	builder := c.graph.Users().Delta()
	var config *users.DeltaRequestBuilderGetRequestConfiguration
	if link != "" {
		builder = users.NewDeltaRequestBuilder(link, c.adapter)
	} else {
		config = &users.DeltaRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.DeltaRequestBuilderGetQueryParameters{Select: userDeltaSelect},
		}
	}
	resp, err := builder.GetAsDeltaGetResponse(ctx, config)
	if err != nil {
		return directory.DeltaPage[directory.UserDelta]{}, classify("user.delta", err)
	}
	page := directory.DeltaPage[directory.UserDelta]{NextLink: deref(resp.GetOdataNextLink()), DeltaLink: deref(resp.GetOdataDeltaLink())}
	for _, u := range resp.GetValue() {
		item := directory.UserDelta{User: *toUser(u)}
		extra := u.GetAdditionalData()
		_, item.Removed = extra["@removed"]
		if changes, ok := extra["manager@delta"]; ok {
			added, removed, err := memberChanges("manager@delta", changes)
			if err != nil {
				return directory.DeltaPage[directory.UserDelta]{}, fmt.Errorf("user.delta: user %s: %w", item.ID, err)
			}
			item.ManagerSeen = len(added)+len(removed) > 0
			if len(added) > 0 {
				item.ManagerID = added[len(added)-1]
			}
		}
		page.Items = append(page.Items, item)
	}
	return page, nil
}

// GroupsDelta reads one page of Graph's groups delta query, with each group's member changes
// (members@delta), as UsersDelta does for users.
func (c *Client) GroupsDelta(ctx context.Context, link string) (directory.DeltaPage[directory.GroupDelta], error) {
	builder := c.graph.Groups().Delta()
	var config *groups.DeltaRequestBuilderGetRequestConfiguration
	if link != "" {
		builder = groups.NewDeltaRequestBuilder(link, c.adapter)
	} else {
		config = &groups.DeltaRequestBuilderGetRequestConfiguration{
			QueryParameters: &groups.DeltaRequestBuilderGetQueryParameters{Select: groupDeltaSelect},
		}
	}
	resp, err := builder.GetAsDeltaGetResponse(ctx, config)
	if err != nil {
		return directory.DeltaPage[directory.GroupDelta]{}, classify("group.delta", err)
	}
	page := directory.DeltaPage[directory.GroupDelta]{NextLink: deref(resp.GetOdataNextLink()), DeltaLink: deref(resp.GetOdataDeltaLink())}
	for _, g := range resp.GetValue() {
		item := directory.GroupDelta{Group: *toGroup(g)}
		extra := g.GetAdditionalData()
		_, item.Removed = extra["@removed"]
		if changes, ok := extra["members@delta"]; ok {
			if item.MembersAdded, item.MembersRemoved, err = memberChanges("members@delta", changes); err != nil {
				return directory.DeltaPage[directory.GroupDelta]{}, fmt.Errorf("group.delta: group %s: %w", item.ID, err)
			}
		}
		page.Items = append(page.Items, item)
	}
	return page, nil
}

// memberChanges reads a relationship's delta annotation (members@delta, manager@delta), which the
// SDK keeps as raw JSON values: a list of objects with an id, and "@removed" on those removed.
func memberChanges(name string, raw any) (added, removed []string, err error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, nil, fmt.Errorf("%s is a %T, not a list", name, raw)
	}
	for i, entry := range list {
		member, ok := entry.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("%s[%d] is a %T, not an object", name, i, entry)
		}
		id := rawString(member["id"])
		if id == "" {
			return nil, nil, fmt.Errorf("%s[%d] has no id", name, i)
		}
		if _, gone := member["@removed"]; gone {
			removed = append(removed, id)
		} else {
			added = append(added, id)
		}
	}
	return added, removed, nil
}

// rawString reads a raw JSON string as the SDK's parse nodes return it (a *string).
func rawString(v any) string {
	switch s := v.(type) {
	case *string:
		return deref(s)
	case string:
		return s
	}
	return ""
}
