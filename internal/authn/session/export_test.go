package session

import (
	"context"
	"time"
)

// For the external tests: the store key of a pending login.
func LoginKey(state string) string { return keyLogin + hashKey("state", state) }

// PlantSession stores a session for sub with claims, as a login would,
// and returns the Cookie header value that names it.
func (a *Authenticator) PlantSession(ctx context.Context, sub string, claims map[string]any, tls bool) (string, error) {
	key, err := a.cookieKey(ctx)
	if err != nil {
		return "", err
	}
	now := a.now()
	rec := &record{Subject: sub, Claims: claims, IDToken: "x.y.z", AccessToken: "at", Scopes: []string{"openid", "email"},
		Expiry: now.Add(time.Hour).Unix(), Ends: now.Add(a.s.ttl).Unix()}
	sid := random(32)
	if err := a.save(ctx, sid, rec, now); err != nil {
		return "", err
	}
	name, _ := a.cookieNames(tls)
	return name + "=" + sign(key, name, sid), nil
}
