// Package targetattr names the directory attributes a policy's mapping may set, per target. It is
// the contract between org-model, which accepts these names in a policy file, and the writers,
// which must write every one of them: each writer's tests iterate over these lists, so a name
// added here without a writer that handles it fails a test rather than being silently dropped.
package targetattr

import "slices"

// Entra is every Entra ID user attribute a mapping may set, by Graph's property names, except
// businessPhone (the first of businessPhones) and costCenter and division (in employeeOrgData)
// which are named as HR names them; extensionAttribute1 to 15 are the properties of
// onPremisesExtensionAttributes.
var Entra = []string{
	"displayName", "givenName", "surname", "mail", "jobTitle", "department", "companyName",
	"officeLocation", "employeeType", "costCenter", "division", "businessPhone", "usageLocation",
	"city", "country", "state", "streetAddress", "postalCode", "mobilePhone", "preferredLanguage",
	"extensionAttribute1", "extensionAttribute2", "extensionAttribute3", "extensionAttribute4",
	"extensionAttribute5", "extensionAttribute6", "extensionAttribute7", "extensionAttribute8",
	"extensionAttribute9", "extensionAttribute10", "extensionAttribute11", "extensionAttribute12",
	"extensionAttribute13", "extensionAttribute14", "extensionAttribute15",
}

// AD is every Active Directory user attribute a mapping may set, by LDAP names.
// parentDistinguishedName is not an LDAP attribute but ad-writer's instruction where the account
// lives (the OU), e.g. per org unit.
var AD = []string{
	"parentDistinguishedName",
	"displayName", "givenName", "sn", "mail", "title", "department", "company",
	"physicalDeliveryOfficeName", "employeeType", "division", "telephoneNumber", "description",
	"l", "c", "co", "st", "streetAddress", "postalCode", "mobile",
	"extensionAttribute1", "extensionAttribute2", "extensionAttribute3", "extensionAttribute4",
	"extensionAttribute5",
}

// IsEntra says whether a mapping may set the Entra attribute name.
func IsEntra(name string) bool { return slices.Contains(Entra, name) }

// IsAD says whether a mapping may set the AD attribute name.
func IsAD(name string) bool { return slices.Contains(AD, name) }
