package emulator

import (
	"net/http"
	"strings"
	"unicode"
)

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

// checkRequired verifies rules against props. With creating, a missing property is an error;
// otherwise (PATCH) only a property that is given, including as null, is checked.
func checkRequired(props Object, rules []propertyRule, kind objectKind, creating bool) error {
	for _, rule := range rules {
		value, given := props[rule.name]
		if !given && !creating {
			continue
		}
		if !given || value == nil || value == "" {
			return requiredProperty(rule.name)
		}
		if !rule.check(value) {
			return invalidProperty(rule.name, kind)
		}
	}
	if nickname, given := props["mailNickname"].(string); given && !validMailNickname(nickname) {
		return invalidProperty("mailNickname", kind)
	}
	return nil
}

// validMailNickname applies Graph's rule: at most 64 ASCII characters, none of @ ( ) \ [ ] " ; : < > , or space.
func validMailNickname(nickname string) bool {
	if len(nickname) > 64 {
		return false
	}
	for _, character := range nickname {
		if character > unicode.MaxASCII || unicode.IsControl(character) || strings.ContainsRune(`@()\[]";:<>, `, character) {
			return false
		}
	}
	return true
}

// validUserPrincipalName applies Graph's rule: alias@domain, where the alias has at most 64 of
// A-Z a-z 0-9 ' . - _ ! # ^ ~ and the domain is a host name.
func validUserPrincipalName(principalName string) bool {
	alias, domain, found := strings.Cut(principalName, "@")
	if !found || alias == "" || len(alias) > 64 || domain == "" || strings.Contains(domain, "@") {
		return false
	}
	for _, character := range alias {
		if !isASCIIAlphanumeric(character) && !strings.ContainsRune(`'.-_!#^~`, character) {
			return false
		}
	}
	for _, character := range domain {
		if !isASCIIAlphanumeric(character) && character != '.' && character != '-' {
			return false
		}
	}
	return true
}

func isASCIIAlphanumeric(character rune) bool {
	return character >= 'a' && character <= 'z' || character >= 'A' && character <= 'Z' || character >= '0' && character <= '9'
}

// checkPasswordProfile validates a passwordProfile. With creating, the password is required;
// on PATCH a profile without a password (only forceChangePasswordNextSignIn) is fine.
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
			"The specified password does not comply with password complexity requirements. Please provide a different password.")
	}
	return nil
}

// complexPassword applies Entra ID's default policy: 8 to 256 characters from at least three of
// lowercase letters, uppercase letters, digits and symbols.
func complexPassword(password string) bool {
	length := len([]rune(password))
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
