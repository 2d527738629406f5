package app

import (
	"context"
	"fmt"
	"maps"

	"github.com/sbc-project/sbc/b2bua/registrar"
	"github.com/sbc-project/sbc/internal/config"
)

// setupRegistrar builds the registrar the B2BUA gets as hooks: the binding
// store (a.bindings) with its limits, and the digest authenticator with the
// users of the config and of auth.users_file.
func (a *App) setupRegistrar(cfg *config.Config) (*registrar.Auth, error) {
	users := make(map[string]string, len(cfg.Users))
	groups := make(map[string]string, len(cfg.Users)) // dial groups (policy.dial_rules)
	for _, u := range cfg.Users {
		users[u.Username] = u.Password
		if u.Group != "" {
			groups[u.Username] = u.Group
		}
	}
	if cfg.Auth.UsersFile != "" {
		more, err := registrar.LoadUsersFile(cfg.Auth.UsersFile)
		if err != nil {
			return nil, fmt.Errorf("auth.users_file: %w", err)
		}
		maps.Copy(users, more)
	}
	auth, err := registrar.NewAuth(registrar.AuthConfig{
		Realm: cfg.Auth.Realm, Users: users, HMACSecret: []byte(cfg.Auth.HMACSecret), NonceTTL: cfg.Auth.NonceTTL,
		Algorithms: cfg.Auth.Algorithms, Groups: groups,
	})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	r := cfg.Registrar
	a.bindings = registrar.NewStore(registrar.Config{
		MinExpires: r.MinExpires, MaxExpires: r.MaxExpires, DefaultExpires: min(r.MaxExpires, max(r.MinExpires, registrar.DefaultDefaultExpires)),
		MaxBindingsPerAOR: r.MaxBindingsPerAOR,
	})
	return auth, nil
}

// runRegistrar starts the binding sweeper and the keepalives.
func (a *App) runRegistrar(ctx context.Context, cfg *config.Config) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.bindings.Run(ctx)
	}()
	a.server.Registration().StartKeepalives(ctx, cfg.Registrar.KeepaliveInterval)
}
