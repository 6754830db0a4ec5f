package ldaptest

import "testing"

func TestFakeContract(t *testing.T) {
	RunContract(t, func(*testing.T) (Directory, string) {
		const ou = "OU=Contract,DC=corp,DC=example,DC=test"
		return NewFake(ou), ou
	})
}
