package graph

import (
	"context"
	"fmt"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/microsoft/kiota-abstractions-go/authentication"
	kiotaazure "github.com/microsoft/kiota-authentication-azure-go"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/orgsync/orgsync/services/entra-writer/internal/directory"
)

// NewAzureAuth authenticates as the application with azidentity's DefaultAzureCredential, which
// reads AZURE_TENANT_ID, AZURE_CLIENT_ID and one of AZURE_CLIENT_SECRET,
// AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE (workload identity). The token is
// only sent to baseURL's host.
func NewAzureAuth(baseURL string) (authentication.AuthenticationProvider, error) {
	base, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("GRAPH_BASE_URL: %w", err)
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("Azure credentials: %w", err)
	}
	// The allowed-hosts check compares host names without ports.
	provider, err := kiotaazure.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred,
		[]string{"https://graph.microsoft.com/.default"}, []string{base.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("Graph authentication: %w", err)
	}
	return provider, nil
}

// NoAuth sends no credentials, for the Graph emulator.
func NoAuth() authentication.AuthenticationProvider {
	return &authentication.AnonymousAuthenticationProvider{}
}

// Ping checks that Graph answers and accepts the credentials with the cheapest read there is. A
// throttled answer counts as an answer: Graph throttles an app it has authenticated, and a writer
// inside a Retry-After window (its own calls answered locally, see ThrottleTransport) is waiting,
// not broken — failing readiness for it would take every replica out of service while Graph
// only asked them to slow down.
func (c *Client) Ping(ctx context.Context) error {
	top := int32(1)
	_, err := c.graph.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Top: &top, Select: []string{"id"}},
	})
	if err != nil {
		if err := classify("ping", err); directory.ClassOf(err) != directory.ClassThrottled {
			return err
		}
	}
	return nil
}
