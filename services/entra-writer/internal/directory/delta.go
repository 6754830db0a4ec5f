package directory

// UserDelta is one user in a round of Graph's users delta query: its current attributes, or,
// when Removed, only its id (the user was deleted).
type UserDelta struct {
	User
	Removed bool
	// ManagerSeen says the round reported the user's manager link (Graph's "manager@delta"), and
	// ManagerID is then the manager's object id, "" when the link was taken away. A first round
	// reports every link there is: there, a user without one has no manager. A later round
	// reports only links that changed.
	ManagerSeen bool
	ManagerID   string
}

// GroupDelta is one group in a round of Graph's groups delta query: its current attributes and
// the member changes of the round (all its members in a first round), or, when Removed, only its
// id. A group may appear on several pages of one round, each with part of its member changes.
type GroupDelta struct {
	Group
	Removed bool
	// MembersAdded and MembersRemoved are object ids, of users and groups alike.
	MembersAdded   []string
	MembersRemoved []string
}

// DeltaPage is one page of a delta round. Exactly one of NextLink (more pages follow) and
// DeltaLink (the round is complete; pass it to get the changes since) is set.
type DeltaPage[T any] struct {
	Items     []T
	NextLink  string
	DeltaLink string
}
