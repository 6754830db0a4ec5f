package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// TokensFile is the static API tokens file: YAML or JSON, e.g.
//
//	tokens:
//	  - name: ci-approver
//	    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//	    roles: [approver]
//
// Only the SHA-256 (hex) of each token is stored; the token itself is given to its holder.
type TokensFile struct {
	Tokens []StaticToken `yaml:"tokens" json:"tokens"`
}

// StaticToken is one entry of the tokens file.
type StaticToken struct {
	// Name identifies the token in the audit (Principal.TokenName); it is not secret.
	Name string `yaml:"name" json:"name"`
	// SHA256 is the hex SHA-256 of the token.
	SHA256 string `yaml:"sha256" json:"sha256"`
	// Roles are the roles the token grants.
	Roles []Role `yaml:"roles" json:"roles"`
}

type hashedToken struct {
	name  string
	hash  [sha256.Size]byte
	roles []Role
}

// loadTokens reads and checks a tokens file; every problem is reported with the entry it is in.
func loadTokens(path string) ([]hashedToken, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the tokens file: %w", err)
	}
	var file TokensFile
	// YAML is a superset of JSON, so one decoder reads both.
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	decoder.KnownFields(true)
	if err := decoder.Decode(&file); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var errs []error
	var tokens []hashedToken
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]bool{}
	for i, entry := range file.Tokens {
		where := fmt.Sprintf("%s: tokens[%d]", path, i)
		if entry.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is missing", where))
		} else if names[entry.Name] {
			errs = append(errs, fmt.Errorf("%s: name %q is used twice", where, entry.Name))
		}
		names[entry.Name] = true
		raw, err := hex.DecodeString(entry.SHA256)
		if err != nil || len(raw) != sha256.Size {
			errs = append(errs, fmt.Errorf("%s (%s): sha256 must be 64 hex digits, the SHA-256 of the token (sha256sum), not the token", where, entry.Name))
			continue
		}
		var hash [sha256.Size]byte
		copy(hash[:], raw)
		if hashes[hash] {
			errs = append(errs, fmt.Errorf("%s (%s): the same token hash is listed twice", where, entry.Name))
		}
		hashes[hash] = true
		if len(entry.Roles) == 0 {
			errs = append(errs, fmt.Errorf("%s (%s): roles is empty", where, entry.Name))
		}
		roles := make([]Role, 0, len(entry.Roles))
		for _, r := range entry.Roles {
			role, err := ParseRole(string(r))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): %w", where, entry.Name, err))
				continue
			}
			roles = append(roles, role)
		}
		tokens = append(tokens, hashedToken{name: entry.Name, hash: hash, roles: roles})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tokens, nil
}

// matchToken returns the entry whose hash is the token's. Every entry is compared, in constant
// time, so the time taken says nothing about which entry came close.
func matchToken(tokens []hashedToken, token string) (hashedToken, bool) {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range tokens {
		if subtle.ConstantTimeCompare(sum[:], tokens[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return hashedToken{}, false
	}
	return tokens[found], true
}

// HashToken returns the hex SHA-256 of a token, the form the tokens file stores.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a random static API token (32 bytes from crypto/rand, base64url, prefixed
// "orgsync_" so that secret scanners can recognise it).
func NewToken() (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generating a token: %w", err)
	}
	return "orgsync_" + base64.RawURLEncoding.EncodeToString(raw[:]), nil
}
