package pdapi

import "net/url"

// entityPaths are the single-item endpoints of the entity types webhooks name: API v2 where
// Pipedrive has it, v1 for the types v2 lacks (leads, notes).
var entityPaths = map[string]string{
	"deal":         "/api/v2/deals/",
	"person":       "/api/v2/persons/",
	"organization": "/api/v2/organizations/",
	"activity":     "/api/v2/activities/",
	"product":      "/api/v2/products/",
	"pipeline":     "/api/v2/pipelines/",
	"stage":        "/api/v2/stages/",
	"lead":         "/api/v1/leads/",
	"note":         "/api/v1/notes/",
}

// EntityPath is the path that reads one entity of a webhook event's type (event_object, such
// as "deal") and id: "/api/v2/deals/101". False for a type without a single-item endpoint here.
func EntityPath(entity, id string) (string, bool) {
	p, ok := entityPaths[entity]
	if !ok || id == "" {
		return "", false
	}
	return p + url.PathEscape(id), true
}
