package pdsim

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestAdminStatuses checks, for every admin endpoint that takes a JSON body, the status of a
// success, of each refusal and of a body that does not decode, and that refusals carry
// {"error"} and 204 answers carry no body.
func TestAdminStatuses(t *testing.T) {
	s := newSim(t, Config{AdminEnabled: true})
	tests := []struct {
		name, path, body string
		want             int
	}{
		{"fault", "/_sim/faults", `{"path":"/nowhere","status":500}`, http.StatusCreated},
		{"invalid fault", "/_sim/faults", `{"path":"/oauth/token","status":700}`, http.StatusBadRequest},
		{"user", "/_sim/users", `{"id":7,"company_id":8}`, http.StatusCreated},
		{"user without company", "/_sim/users", `{"id":9}`, http.StatusBadRequest},
		{"acting user", "/_sim/acting-user", `{"user_id":7}`, http.StatusNoContent},
		{"acting unknown user", "/_sim/acting-user", `{"user_id":99}`, http.StatusNotFound},
		{"authorize mode", "/_sim/authorize-mode", `{"mode":"approve"}`, http.StatusNoContent},
		{"bad authorize mode", "/_sim/authorize-mode", `{"mode":"maybe"}`, http.StatusBadRequest},
		{"code", "/_sim/codes", `{"user_id":7}`, http.StatusCreated},
		{"code for unknown user", "/_sim/codes", `{"user_id":99}`, http.StatusNotFound},
		{"token", "/_sim/tokens", `{"user_id":7}`, http.StatusCreated},
		{"token for unknown user", "/_sim/tokens", `{"user_id":99}`, http.StatusNotFound},
		{"API token", "/_sim/api-tokens", `{"user_id":7}`, http.StatusCreated},
		{"API token for unknown user", "/_sim/api-tokens", `{"user_id":99}`, http.StatusNotFound},
		{"expire", "/_sim/expire-access-tokens", `{"user_id":7}`, http.StatusOK},
		{"revoke", "/_sim/revoke-user", `{"user_id":7}`, http.StatusOK},
		{"gone", "/_sim/gone", `{"path":"/api/v1/old"}`, http.StatusNoContent},
		{"gone without slash", "/_sim/gone", `{"path":"api/v1/old"}`, http.StatusBadRequest},
		{"gone empty", "/_sim/gone", `{}`, http.StatusBadRequest},
		{"API domain", "/_sim/api-domain", `{"company_id":8,"api_domain":"https://seven.pipedrive.com"}`, http.StatusNoContent},
		{"undecodable body", "/_sim/tokens", `{"user_id":`, http.StatusBadRequest},
		{"unknown field", "/_sim/api-domain", `{"company":8}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		r := s.admin("POST", tt.path, tt.body)
		if r.status != tt.want {
			t.Errorf("%s: POST %s %s = %d (%s), want %d", tt.name, tt.path, tt.body, r.status, r.body, tt.want)
			continue
		}
		switch {
		case tt.want == http.StatusNoContent:
			if len(r.body) != 0 {
				t.Errorf("%s: POST %s body = %q, want none", tt.name, tt.path, r.body)
			}
		case tt.want >= 400:
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
				t.Errorf("%s: POST %s body = %q, want {\"error\": …}", tt.name, tt.path, r.body)
			}
		default:
			if !json.Valid(r.body) || len(r.body) < 3 {
				t.Errorf("%s: POST %s body = %q, want a JSON result", tt.name, tt.path, r.body)
			}
		}
	}
}
