package directorytest

import "testing"

func TestFakeContract(t *testing.T) {
	RunContract(t, func(*testing.T) (Directory, Members, Managers) {
		fake := NewFake()
		fake.Subscribe(ContractSkuID, 1, ContractPlanA, ContractPlanB)
		return fake, fake.Members, fake.Manager
	})
}
