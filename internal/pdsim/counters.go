package pdsim

import "maps"

// Counters is a snapshot of what the simulator has seen since New or ResetCounters. Maps are
// never nil in a snapshot.
type Counters struct {
	// TokenByGrant counts POST /oauth/token calls by grant_type: "authorization_code",
	// "refresh_token", "exchange_api_token", "(missing)", "(unsupported)", or "(unread)" when
	// the body could not be read as a form.
	TokenByGrant map[string]int `json:"token_by_grant"`
	// TokenByInstallation counts token calls that named a known installation
	// ("companyID:userID"), successful or not: a code, refresh token or API token the
	// simulator issued, even if expired or already used.
	TokenByInstallation map[string]int `json:"token_by_installation"`
	// TokenErrors counts token errors by their exact message (the Msg… constants).
	TokenErrors map[string]int `json:"token_errors"`
	// Authorize counts /oauth/authorize outcomes: "approved", "denied", "maintenance",
	// "not_installable", "invalid_client", "redirect_uri_not_valid", "redirect_uri_invalid".
	Authorize map[string]int `json:"authorize"`
	// Revokes counts /oauth/revoke calls that passed client authentication.
	Revokes int `json:"revokes"`
	// RevokeErrors counts /oauth/revoke errors by exact message.
	RevokeErrors map[string]int `json:"revoke_errors"`
	// Uninstalls counts Uninstall calls that reached the sending step.
	Uninstalls int `json:"uninstalls"`
	// APIByRoute counts /api/ calls by "METHOD path-template", e.g. "GET /api/v2/deals/{id}";
	// unmatched paths count as "METHOD unmatched", retired paths under their own path.
	APIByRoute map[string]int `json:"api_by_route"`
	// APIByStatus counts /api/ calls by the status answered; 0 means no response (the
	// connection was dropped, or the client gave up during a hang).
	APIByStatus map[int]int `json:"api_by_status"`
	// APIByHost counts /api/ calls by the Host header (see SetAPIDomain).
	APIByHost map[string]int `json:"api_by_host"`
	// Faults counts fired faults by the id Inject returned.
	Faults map[string]int `json:"faults"`
	// WebhookDeliveries counts webhook delivery attempts by outcome ("delivered", "failed",
	// "timeout", "banned"), redeliveries included.
	WebhookDeliveries map[string]int `json:"webhook_deliveries"`
	// WebhookByStatus counts webhook delivery attempts that were sent by the receiver's
	// status; 0 means no answer (connection error or timeout).
	WebhookByStatus map[int]int `json:"webhook_by_status"`
	// WebhooksDeleted counts webhooks deleted for going WebhookDeleteAfter without a
	// successful delivery.
	WebhooksDeleted int `json:"webhooks_deleted"`
}

// newCounters returns empty counters with every map allocated.
func newCounters() Counters {
	return Counters{
		TokenByGrant:        map[string]int{},
		TokenByInstallation: map[string]int{},
		TokenErrors:         map[string]int{},
		Authorize:           map[string]int{},
		RevokeErrors:        map[string]int{},
		APIByRoute:          map[string]int{},
		APIByStatus:         map[int]int{},
		APIByHost:           map[string]int{},
		Faults:              map[string]int{},
		WebhookDeliveries:   map[string]int{},
		WebhookByStatus:     map[int]int{},
	}
}

// clone deep-copies c.
func (c Counters) clone() Counters {
	c.TokenByGrant = maps.Clone(c.TokenByGrant)
	c.TokenByInstallation = maps.Clone(c.TokenByInstallation)
	c.TokenErrors = maps.Clone(c.TokenErrors)
	c.Authorize = maps.Clone(c.Authorize)
	c.RevokeErrors = maps.Clone(c.RevokeErrors)
	c.APIByRoute = maps.Clone(c.APIByRoute)
	c.APIByStatus = maps.Clone(c.APIByStatus)
	c.APIByHost = maps.Clone(c.APIByHost)
	c.Faults = maps.Clone(c.Faults)
	c.WebhookDeliveries = maps.Clone(c.WebhookDeliveries)
	c.WebhookByStatus = maps.Clone(c.WebhookByStatus)
	return c
}

// Counters returns a copy of the counters.
func (s *Server) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counters.clone()
}

// ResetCounters sets every counter to zero.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters = newCounters()
}

// countToken records one token call.
func (s *Server) countToken(grantType, installation, errMsg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters.TokenByGrant[grantType]++
	if installation != "" {
		s.counters.TokenByInstallation[installation]++
	}
	if errMsg != "" {
		s.counters.TokenErrors[errMsg]++
	}
}

// countRevoke records one revoke call; authenticated is whether it passed client auth.
func (s *Server) countRevoke(authenticated bool, errMsg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if authenticated {
		s.counters.Revokes++
	}
	if errMsg != "" {
		s.counters.RevokeErrors[errMsg]++
	}
}

// countAuthorize records one authorize outcome.
func (s *Server) countAuthorize(outcome string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters.Authorize[outcome]++
}

// countAPI records one API call after it was answered (or abandoned).
func (s *Server) countAPI(route, host string, rec *recorder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters.APIByRoute[route]++
	s.counters.APIByStatus[rec.status]++
	s.counters.APIByHost[host]++
}
