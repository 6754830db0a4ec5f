package auth

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

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

// DefaultTokenFile is where orgsyncctl looks for a token when neither --token-file nor
// ORGSYNC_TOKEN gives one, and where `make run` writes its dev token:
// $XDG_CONFIG_HOME/orgsync/token, else ~/.config/orgsync/token.
func DefaultTokenFile() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the default token file: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "orgsync", "token"), nil
}

// ReadTokenFile reads a token from a file, without surrounding white space; an empty file is an
// error naming the file.
func ReadTokenFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return token, nil
}
