// Package password makes the initial passwords the writers give new accounts: random, 24
// characters, with every character class Entra ID's and Active Directory's complexity rules ask
// for, at random positions. A password is sent once, in the create (or the AD password set), and
// never logged or stored.
package password

import (
	"crypto/rand"
	"fmt"
	"math/big"
)

// The character classes. Letters and digits that are easily mistaken for one another (l, I, O,
// 0, 1) are left out, for the day a person has to read one out.
const (
	lowers   = "abcdefghijkmnopqrstuvwxyz"
	uppers   = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	digits   = "23456789"
	symbols  = "!@#$%^&*-_=+?"
	alphabet = lowers + uppers + digits + symbols
)

// Length is the length of a password New makes.
const Length = 24

// New returns a random password of Length characters with at least one lower-case letter, one
// upper-case letter, one digit and one symbol, wherever they fall.
func New() (string, error) {
	password := make([]byte, Length)
	for i := range password {
		set := alphabet
		if i < 4 {
			set = []string{lowers, uppers, digits, symbols}[i]
		}
		n, err := randomBelow(len(set))
		if err != nil {
			return "", err
		}
		password[i] = set[n]
	}
	// Move the guaranteed classes away from the front (Fisher–Yates).
	for i := len(password) - 1; i > 0; i-- {
		j, err := randomBelow(i + 1)
		if err != nil {
			return "", err
		}
		password[i], password[j] = password[j], password[i]
	}
	return string(password), nil
}

func randomBelow(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("generating a password: %w", err)
	}
	return int(v.Int64()), nil
}
