package tokenstore_test

import (
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// The store is the production adapter of the refresh logic's ports. Only this test imports
// refresh: the store itself must not depend on the logic it serves.
var (
	_ refresh.Store  = (*tokenstore.Store)(nil)
	_ refresh.Lister = (*tokenstore.Store)(nil)
)
