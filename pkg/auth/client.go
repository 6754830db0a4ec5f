package auth

import "context"

// Bearer is a token a gRPC client sends with every call
// (grpc.WithPerRPCCredentials(auth.Bearer(token))).
type Bearer string

// GetRequestMetadata sends the token in the authorization header.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so that orgsyncctl can reach a service on loopback or through
// a port-forward without TLS; anything crossing a network should use TLS (--ca-file).
func (b Bearer) RequireTransportSecurity() bool { return false }
