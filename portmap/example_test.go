package portmap_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchboard-dev/switchboard/portmap"
)

// ExampleStart maps the broker's port 8080 with whatever the router speaks,
// reports changes, and removes the mapping on the way out.
func ExampleStart() {
	ctx := context.Background()
	m, err := portmap.Start(ctx, portmap.Config{
		Protocol:     portmap.Auto,
		InternalPort: 8080,
		Logger:       slog.Default(),
		OnChange: func(s portmap.Status) {
			if s.Mapped {
				slog.Info("reachable from outside", "addr", s.External(), "via", s.Protocol)
			} else if s.Err != "" {
				slog.Warn("not reachable from outside", "reason", s.Err)
			}
		},
	})
	if err != nil {
		panic(err) // only an invalid Config gets here
	}
	defer func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m.Shutdown(ctx)
	}()
	// ... serve ...
}
