package tokenstore

import "github.com/pdkit/pipedrive-lambda-kit/internal/installation"

// The domain types live in internal/installation; these aliases keep the store's API readable
// for its callers.
type (
	// InstallationID is installation.ID.
	InstallationID = installation.ID
	// Status is installation.Status.
	Status = installation.Status
	// Installation is installation.Installation.
	Installation = installation.Installation
	// Tokens is installation.Tokens.
	Tokens = installation.Tokens
)

// The statuses, as in internal/installation.
const (
	StatusActive      = installation.StatusActive
	StatusNeedsReauth = installation.StatusNeedsReauth
	StatusUninstalled = installation.StatusUninstalled
)
