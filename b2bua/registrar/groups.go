package registrar

// VerifyGroup is Verify that also returns the dial group of a static user
// (AuthConfig.Groups; "" when it has none). HMAC-minted credentials have
// no group, even when their user part names a static user: the web
// application that mints them, not the config, vouches for them.
func (a *Auth) VerifyGroup(method, uri string, headerValues []string) (user, group string, r Result) {
	user, r = a.Verify(method, uri, headerValues)
	if r != Ok {
		return "", "", r
	}
	// Verify accepted these credentials, so pick finds them again.
	if c, _ := a.pick(headerValues); c.username == user {
		if _, static := a.users[user]; static {
			group = a.groups[user]
		}
	}
	return user, group, Ok
}

// Group returns the dial group of a static user (AuthConfig.Groups), ""
// for users without one or not in the config.
func (a *Auth) Group(user string) string {
	if _, static := a.users[user]; !static {
		return ""
	}
	return a.groups[user]
}
