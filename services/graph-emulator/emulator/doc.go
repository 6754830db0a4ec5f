// Package emulator is an in-memory Microsoft Graph v1.0 server for tests, benchmarks and local
// runs of orgsync.
//
// It speaks the subset of Graph that orgsync needs — users, groups and group membership, with
// $filter (eq clauses joined by and), $select, $top, $skiptoken and $count, $batch, and delta
// queries on users and groups (users/delta and groups/delta, also spelled delta() as
// msgraph-sdk-go does, with "members@delta", "manager@delta" (when $select names manager), "@removed", $deltatoken=latest and
// "Prefer: odata.maxpagesize") — and answers with Graph's status codes, error codes and error
// envelope, so that the real msgraph-sdk-go client can be pointed at it:
//
//	srv := httptest.NewServer(emulator.New())
//	adapter.SetBaseUrl(srv.URL + "/v1.0")
//
// Behaviour that matters to a client and is easy to get wrong against real Graph is reproduced
// on purpose: reading a user without $select returns only Graph's default user properties,
// $count needs the header "ConsistencyLevel: eventual", a collection is paged at 100 items by
// default, passwords are never returned (nor kept: a salted hash is, for PasswordIs and
// PasswordProfile — a PATCH of passwordProfile is how an app resets a password), userPrincipalName
// is unique regardless of case, and
// userPrincipalName, mailNickname, mail, passwords, required properties and the documented
// maximum lengths (employeeId 16, displayName 256, jobTitle 128, ...) are checked as Graph checks
// them, on POST, PATCH and inside $batch, with Graph's answer: 400 Request_BadRequest and a
// "details" entry whose code (InvalidValue, ObjectConflict) and target name the property.
// WithVerifiedDomains restricts userPrincipalName domains as a tenant's verified domains do.
//
// Access: users/{id}/revokeSignInSessions resets the user's signInSessionsValidFromDateTime
// (sessions.go; SignInSessionValid tells whether a session issued at a time still works), and
// group-based licensing is emulated (licenses.go): subscribedSkus seeded with WithSubscribedSkus,
// groups/{id}/assignLicense checked against them, assignedLicenses and each member's
// licenseAssignmentStates computed on $select (CountViolation beyond the prepaid units,
// ProhibitedInUsageLocationViolation without a usage location), and membersWithLicenseErrors.
// Credentials (credentials.go): a user's Temporary Access Pass (users/{id}/authentication/
// temporaryAccessPassMethods: the pass only in the create's answer, one per user, lifetimes
// within the tenant's policy, WithAccessPassPolicy) and users/{id}/sendMail, whose accepted
// messages SentMail returns as copies for tests to inspect.
//
// A *Server is safe for concurrent use and starts no goroutines. Every request passes through
// Server.ServeHTTP, which matches a route, runs its handler and writes any error in one place;
// later features (such as $batch, members@odata.bind, delta queries, soft delete and fault
// injection) are added as routes and Options at those two points. Every change to the directory
// takes the next number of one sequence, which is what delta tokens remember.
package emulator
