package session

// For the external tests: the store key of a pending login.
func LoginKey(state string) string { return keyLogin + hashKey("state", state) }
