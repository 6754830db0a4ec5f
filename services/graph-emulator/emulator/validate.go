package emulator

import (
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The rules below are Graph's, from Microsoft's documentation of the user and group resources,
// of "create user" and of Entra ID's account restrictions. A property that breaks one is answered
// 400 Request_BadRequest with a "details" entry naming the property, as Graph answers.

// propertyRule says what a property must hold when it is given.
type propertyRule struct {
	name  string
	check func(value any) bool
}

func isNonEmptyString(value any) bool {
	text, ok := value.(string)
	return ok && text != ""
}

func isBoolean(value any) bool {
	_, ok := value.(bool)
	return ok
}

// requiredUserProperties and requiredGroupProperties are what POST must carry, in the order
// they are checked. A user's passwordProfile is checked separately.
var (
	requiredUserProperties = []propertyRule{
		{"accountEnabled", isBoolean},
		{"displayName", isNonEmptyString},
		{"mailNickname", isNonEmptyString},
		{"userPrincipalName", isNonEmptyString},
	}
	requiredGroupProperties = []propertyRule{
		{"displayName", isNonEmptyString},
		{"mailEnabled", isBoolean},
		{"mailNickname", isNonEmptyString},
		{"securityEnabled", isBoolean},
	}
)

// Graph's maximum lengths of string properties, in characters.
var (
	userLengthLimits = map[string]int{
		"displayName":    256,
		"givenName":      64,
		"surname":        64,
		"jobTitle":       128,
		"department":     64,
		"companyName":    64,
		"employeeId":     16,
		"mailNickname":   64,
		"city":           128,
		"state":          128,
		"country":        128,
		"postalCode":     40,
		"streetAddress":  1024,
		"officeLocation": 128,
		"mobilePhone":    64,
	}
	groupLengthLimits = map[string]int{
		"displayName":  256,
		"mailNickname": 64,
		"description":  1024,
	}
)

// Limits of a userPrincipalName, from Entra ID's account restrictions.
const (
	maxPrincipalNameLength      = 113
	maxPrincipalNameAliasLength = 64
	maxPrincipalNameDomainLen   = 48
)

// validation checks one create or PATCH body of a kind.
type validation struct {
	kind     objectKind
	creating bool
	// verifiedDomains, when not empty, are the only domains a userPrincipalName may use
	// (lowercased).
	verifiedDomains map[string]bool
}

// user checks a user body: required properties (on create), password, userPrincipalName,
// mailNickname, mail and lengths, in that order, returning Graph's answer for the first problem.
func (v validation) user(props Object) error {
	if err := v.required(props, requiredUserProperties); err != nil {
		return err
	}
	if err := checkPasswordProfile(props, v.creating); err != nil {
		return err
	}
	if value, given := props["userPrincipalName"]; given {
		principalName, _ := value.(string)
		if !validUserPrincipalName(principalName) {
			return invalidPrincipalName()
		}
		if !v.domainVerified(principalName) {
			return unverifiedDomain()
		}
	}
	if err := v.mailNickname(props); err != nil {
		return err
	}
	if value, given := props["mail"]; given && value != nil {
		if address, _ := value.(string); !validMail(address) {
			return invalidProperty("mail", v.kind)
		}
	}
	// usageLocation: "A two-letter country code (ISO standard 3166)"; preferredLanguage: "an ISO
	// 639-1 code", e.g. en-US.
	if value, given := props["usageLocation"]; given && value != nil {
		if code, _ := value.(string); !isLetters(code, 2, 2) {
			return invalidProperty("usageLocation", v.kind)
		}
	}
	if value, given := props["preferredLanguage"]; given && value != nil {
		if tag, _ := value.(string); !validLanguageTag(tag) {
			return invalidProperty("preferredLanguage", v.kind)
		}
	}
	if err := v.extensionAttributes(props); err != nil {
		return err
	}
	return v.lengths(props, userLengthLimits)
}

// maxExtensionAttributeLength is what each of onPremisesExtensionAttributes can store.
const maxExtensionAttributeLength = 1024

// extensionAttributes checks onPremisesExtensionAttributes: an object of extensionAttribute1 to
// extensionAttribute15, each a string of at most 1,024 characters or null.
func (v validation) extensionAttributes(props Object) error {
	value, given := props["onPremisesExtensionAttributes"]
	if !given || value == nil {
		return nil
	}
	attributes, isObject := value.(map[string]any)
	if !isObject {
		return invalidProperty("onPremisesExtensionAttributes", v.kind)
	}
	for name, attribute := range attributes {
		if name == "@odata.type" {
			continue
		}
		if !isExtensionAttribute(name) {
			return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
				"Property '%s' does not exist as a declared property or extension property.", name).about(DetailInvalidValue, name)
		}
		if attribute == nil {
			continue
		}
		if text, isString := attribute.(string); !isString || utf8.RuneCountInString(text) > maxExtensionAttributeLength {
			return invalidProperty("onPremisesExtensionAttributes."+name, v.kind)
		}
	}
	return nil
}

func isExtensionAttribute(name string) bool {
	n, found := strings.CutPrefix(name, "extensionAttribute")
	if !found || n == "" || n[0] == '0' || len(n) > 2 {
		return false
	}
	number := 0
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
		number = number*10 + int(r-'0')
	}
	return number >= 1 && number <= 15
}

// isLetters says whether s is between lo and hi ASCII letters.
func isLetters(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') }) < 0
}

// validLanguageTag accepts an ISO 639-1 language, optionally with a region: en, en-US.
func validLanguageTag(tag string) bool {
	language, region, hasRegion := strings.Cut(tag, "-")
	return isLetters(language, 2, 3) && (!hasRegion || isLetters(region, 2, 3))
}

// group checks a group body the same way.
func (v validation) group(props Object) error {
	if err := v.required(props, requiredGroupProperties); err != nil {
		return err
	}
	if err := v.mailNickname(props); err != nil {
		return err
	}
	return v.lengths(props, groupLengthLimits)
}

// required verifies rules against props. On create a missing property is an error; on PATCH only
// a property that is given, including as null, is checked.
func (v validation) required(props Object, rules []propertyRule) error {
	for _, rule := range rules {
		value, given := props[rule.name]
		if !given && !v.creating {
			continue
		}
		if !given || value == nil || value == "" {
			return requiredProperty(rule.name)
		}
		if !rule.check(value) {
			return invalidProperty(rule.name, v.kind)
		}
	}
	return nil
}

func (v validation) mailNickname(props Object) error {
	if value, given := props["mailNickname"]; given && value != nil {
		if nickname, _ := value.(string); !validMailNickname(nickname) {
			return invalidProperty("mailNickname", v.kind)
		}
	}
	return nil
}

// lengths refuses a string property over its limit, or a limited property that is not a string.
// null clears a property and is always fine.
func (v validation) lengths(props Object, limits map[string]int) error {
	for name, limit := range limits {
		value, given := props[name]
		if !given || value == nil {
			continue
		}
		text, isString := value.(string)
		if !isString || utf8.RuneCountInString(text) > limit {
			return invalidProperty(name, v.kind)
		}
	}
	return nil
}

func (v validation) domainVerified(principalName string) bool {
	if len(v.verifiedDomains) == 0 {
		return true
	}
	_, domain, _ := strings.Cut(principalName, "@")
	return v.verifiedDomains[strings.ToLower(domain)]
}

// validMailNickname applies Graph's rule: 1 to 64 ASCII characters, none of
// @ ( ) \ [ ] " ; : < > , or space.
func validMailNickname(nickname string) bool {
	if nickname == "" || len(nickname) > 64 {
		return false
	}
	for _, character := range nickname {
		if character > unicode.MaxASCII || unicode.IsControl(character) || strings.ContainsRune(`@()\[]";:<>, `, character) {
			return false
		}
	}
	return true
}

// validUserPrincipalName applies Entra ID's rule: alias@domain with exactly one "@"; the alias
// has 1 to 64 of A-Z a-z 0-9 ' . - _ ! # ^ ~ and does not end with "."; the domain is a host name
// of at most 48 characters; the whole is at most 113 characters. Diacritics and other non-ASCII
// letters are refused.
func validUserPrincipalName(principalName string) bool {
	if len(principalName) > maxPrincipalNameLength || strings.Count(principalName, "@") != 1 {
		return false
	}
	alias, domain, _ := strings.Cut(principalName, "@")
	if alias == "" || len(alias) > maxPrincipalNameAliasLength || strings.HasSuffix(alias, ".") {
		return false
	}
	for _, character := range alias {
		if !isASCIIAlphanumeric(character) && !strings.ContainsRune(`'.-_!#^~`, character) {
			return false
		}
	}
	return len(domain) <= maxPrincipalNameDomainLen && validHostName(domain)
}

// validHostName accepts dot-separated labels of ASCII letters, digits and inner hyphens.
func validHostName(host string) bool {
	if host == "" {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, character := range label {
			if !isASCIIAlphanumeric(character) && character != '-' {
				return false
			}
		}
	}
	return true
}

// validMail accepts an SMTP address as Graph stores it in mail: local@host with exactly one "@",
// a local part of printable ASCII without spaces or the specials ( ) < > , ; : \ " [ ], and a
// host name.
func validMail(address string) bool {
	if strings.Count(address, "@") != 1 {
		return false
	}
	local, host, _ := strings.Cut(address, "@")
	if local == "" || len(local) > 64 || strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return false
	}
	for _, character := range local {
		if character <= ' ' || character > '~' || strings.ContainsRune(`()<>,;:\"[]`, character) {
			return false
		}
	}
	return validHostName(host)
}

func isASCIIAlphanumeric(character rune) bool {
	return character >= 'a' && character <= 'z' || character >= 'A' && character <= 'Z' || character >= '0' && character <= '9'
}

// checkPasswordProfile validates a passwordProfile: its properties are password,
// forceChangePasswordNextSignIn and forceChangePasswordNextSignInWithMfa (booleans), any other is
// refused as Graph refuses an undeclared property. With creating, the password is required; on
// PATCH a profile without a password (only the flags) is fine.
func checkPasswordProfile(props Object, creating bool) error {
	value, given := props["passwordProfile"]
	if !given && !creating {
		return nil
	}
	if !given || value == nil {
		return requiredProperty("passwordProfile")
	}
	profile, isObject := value.(map[string]any)
	if !isObject {
		return invalidProperty("passwordProfile", kindUser)
	}
	for name, setting := range profile {
		switch name {
		case "password":
		case "forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa":
			if setting != nil && !isBoolean(setting) {
				return invalidProperty("passwordProfile."+name, kindUser)
			}
		default:
			return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
				"Property '%s' does not exist as a declared property or extension property.", name).about(DetailInvalidValue, name)
		}
	}
	password, given := profile["password"]
	if !given && !creating {
		return nil
	}
	if !given || password == nil || password == "" {
		return requiredProperty("passwordProfile.password")
	}
	text, isString := password.(string)
	if !isString {
		return invalidProperty("passwordProfile", kindUser)
	}
	if !complexPassword(text) {
		return newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
			"The specified password does not comply with password complexity requirements. Please provide a different password.").
			about(DetailInvalidValue, "passwordProfile")
	}
	return nil
}

// complexPassword applies Entra ID's default policy: 8 to 256 characters from at least three of
// lowercase letters, uppercase letters, digits and symbols.
func complexPassword(password string) bool {
	length := utf8.RuneCountInString(password)
	if length < 8 || length > 256 {
		return false
	}
	var lower, upper, digit, symbol bool
	for _, character := range password {
		switch {
		case unicode.IsLower(character):
			lower = true
		case unicode.IsUpper(character):
			upper = true
		case unicode.IsDigit(character):
			digit = true
		default:
			symbol = true
		}
	}
	categories := 0
	for _, present := range []bool{lower, upper, digit, symbol} {
		if present {
			categories++
		}
	}
	return categories >= 3
}
