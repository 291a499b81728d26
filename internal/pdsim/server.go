package pdsim

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrUnknownUser is returned when a user id is not in the directory.
var ErrUnknownUser = errors.New("pdsim: unknown user")

// AuthorizeMode is how /oauth/authorize answers.
type AuthorizeMode string

// The authorize modes.
const (
	// AuthorizeApprove: the acting user approves; redirect with ?code=…&state=….
	AuthorizeApprove AuthorizeMode = "approve"
	// AuthorizeDeny: the user clicks "deny"; redirect with ?error=user_denied&state=….
	AuthorizeDeny AuthorizeMode = "deny"
	// AuthorizeMaintenance: 503 "Whoops! Something broke…" (company database maintenance).
	AuthorizeMaintenance AuthorizeMode = "maintenance"
	// AuthorizeNotInstallable: 400 "App cannot be installed for requested company".
	AuthorizeNotInstallable AuthorizeMode = "not_installable"
)

// valid reports whether m is one of the modes above.
func (m AuthorizeMode) valid() bool {
	switch m {
	case AuthorizeApprove, AuthorizeDeny, AuthorizeMaintenance, AuthorizeNotInstallable:
		return true
	}
	return false
}

// Server simulates Pipedrive's OAuth server and API. Build it with New; it is an http.Handler
// and is safe for concurrent use.
type Server struct {
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	admin *http.ServeMux

	mu         sync.Mutex
	baseURL    string
	gone       map[string]bool
	offset     time.Duration // added to cfg.Now by AdvanceClock
	users      map[int64]User
	acting     int64
	mode       AuthorizeMode
	codes      map[string]*authCode
	access     map[string]*accessToken
	refresh    map[string]*refreshToken
	apiTokens  map[string]*apiToken
	apiDomains map[int64]string
	deals      map[int64]*deal
	persons    map[int64]*person
	orgs       map[int64]*organization
	activities map[int64]*activity
	notes      map[int64]*note
	webhooks   map[int64]*Webhook
	nextID     int64
	daily      map[int64]*dailySpend
	limits     map[string]*tokenLimits // by access token
	accounts   map[int64]AccountState  // companies not AccountOpen
	counters   Counters
	faults     []*faultEntry
	faultSeq   int
	rng        *rand.Rand
	release    chan struct{} // closed by ReleaseHung
	dl         deliveryState
	hookClient *http.Client // sends webhooks: Config.HTTPClient's transport, no redirects
}

// New returns a Server configured by cfg (zero fields take defaults). The default user from cfg
// is in the directory and is the acting user.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		gone:       make(map[string]bool),
		baseURL:    strings.TrimRight(cfg.BaseURL, "/"),
		users:      make(map[int64]User),
		acting:     cfg.UserID,
		mode:       AuthorizeApprove,
		codes:      make(map[string]*authCode),
		access:     make(map[string]*accessToken),
		refresh:    make(map[string]*refreshToken),
		apiTokens:  make(map[string]*apiToken),
		apiDomains: make(map[int64]string),
		deals:      make(map[int64]*deal),
		persons:    make(map[int64]*person),
		orgs:       make(map[int64]*organization),
		activities: make(map[int64]*activity),
		notes:      make(map[int64]*note),
		webhooks:   make(map[int64]*Webhook),
		daily:      make(map[int64]*dailySpend),
		limits:     make(map[string]*tokenLimits),
		accounts:   make(map[int64]AccountState),
		counters:   newCounters(),
		rng:        rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		release:    make(chan struct{}),
		dl:         deliveryState{idle: make(chan struct{})},
		hookClient: &http.Client{
			Transport: cfg.HTTPClient.Transport,
			// Pipedrive requires a subscription URL that does not redirect: a 3xx is a failure.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, p := range cfg.GonePaths {
		s.gone[p] = true
	}
	s.users[cfg.UserID] = User{
		ID:            cfg.UserID,
		CompanyID:     cfg.CompanyID,
		CompanyDomain: cfg.CompanyDomain,
		CompanyName:   cfg.CompanyName,
		Name:          cfg.Name,
		Email:         cfg.Email,
		Scopes:        slices.Clone(cfg.Scopes),
	}
	s.routes()
	s.adminRoutes()
	return s
}

// routes registers the OAuth and API endpoints.
func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /oauth/authorize", s.handleAuthorize)
	m.HandleFunc("/oauth/token", s.handleToken)
	m.HandleFunc("/oauth/revoke", s.handleRevoke)

	m.Handle("GET /api/v1/users/me", s.authed(baseAccess, http.HandlerFunc(s.handleUsersMe)))

	for _, v := range []apiVersion{v1, v2} {
		dealResource.register(m, s, v, dealsAccess)
		personResource.register(m, s, v, personsAccess)
		organizationResource.register(m, s, v, personsAccess)
		activityResource.register(m, s, v, activitiesAccess)
	}
	noteResource.register(m, s, v1, notesAccess)
	// Search (v2; the v1 searches are out of support like the collections). Literal paths win
	// over the collections' /{id} patterns.
	m.Handle("GET /api/v2/deals/search", s.authed(dealsAccess, s.handleEntitySearch("deal")))
	m.Handle("GET /api/v2/persons/search", s.authed(personsAccess, s.handleEntitySearch("person")))
	m.Handle("GET /api/v2/organizations/search", s.authed(personsAccess, s.handleEntitySearch("organization")))
	m.Handle("GET /api/v2/itemSearch", s.authed(searchAccess, http.HandlerFunc(s.handleItemSearch)))

	m.Handle("GET /api/v1/webhooks", s.authed(webhooksAccess, http.HandlerFunc(s.listWebhooks)))
	m.Handle("POST /api/v1/webhooks", s.authed(webhooksAccess, http.HandlerFunc(s.createWebhook)))
	m.Handle("DELETE /api/v1/webhooks/{id}", s.authed(webhooksAccess, http.HandlerFunc(s.deleteWebhook)))

	// Every other /api/ path: authenticated like the rest, then 410 for retired paths or 404.
	m.Handle("/api/", s.authed(access{}, http.HandlerFunc(s.handleUnknownAPI)))
	s.mux = m
}

// ServeHTTP routes a request: /_sim/ to the admin API (when enabled), everything else through
// fault injection to the OAuth and API handlers, counting API calls by route and status.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_sim" || strings.HasPrefix(r.URL.Path, "/_sim/") {
		if !s.cfg.AdminEnabled {
			http.NotFound(w, r)
			return
		}
		s.admin.ServeHTTP(w, r)
		return
	}
	rec := &recorder{ResponseWriter: w}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		_, pattern := s.mux.Handler(r)
		route := s.routeName(r, pattern)
		defer s.countAPI(route, r.Host, rec)
	}
	if s.applyFault(rec, r) {
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// routeName is the "METHOD path-template" a request is counted under.
func (s *Server) routeName(r *http.Request, pattern string) string {
	if s.isGone(r.URL.Path) {
		return r.Method + " " + r.URL.Path
	}
	// Patterns are "[METHOD ]path"; keep the path, use the request's method.
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = pattern[i+1:]
	}
	if pattern == "" || pattern == "/api/" {
		pattern = "unmatched"
	}
	return r.Method + " " + pattern
}

// recorder remembers the status written through it. Unwrap lets http.ResponseController reach
// the underlying writer (for Hijack and Flush).
type recorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the status and passes it on.
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

// Write records an implicit 200 and passes the bytes on.
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap returns the underlying ResponseWriter.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// now is the simulated time: Config.Now plus the AdvanceClock offset.
func (s *Server) now() time.Time {
	s.mu.Lock()
	off := s.offset
	s.mu.Unlock()
	return s.cfg.Now().Add(off)
}

// nowLocked is now for callers holding s.mu.
func (s *Server) nowLocked() time.Time {
	return s.cfg.Now().Add(s.offset)
}

// Now returns the simulator's current time (Config.Now plus AdvanceClock offsets).
func (s *Server) Now() time.Time { return s.now() }

// AdvanceClock moves the simulator's time forward by d on top of Config.Now. It is how the
// standalone binary (which runs on the real clock) ages codes, tokens and rate windows.
func (s *Server) AdvanceClock(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// SetBaseURL sets the URL the simulator is reachable at (scheme://host:port); token responses
// return it as api_domain. Until it is set (here or in Config.BaseURL), the base URL is derived
// from each request: http(s)://<Host header>.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimRight(u, "/")
}

// BaseURL returns the base URL set by SetBaseURL or Config.BaseURL, "" if none.
func (s *Server) BaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// SetAPIDomain makes token responses for companyID carry apiDomain instead of the base URL, to
// test clients that must follow a changed api_domain. An empty apiDomain restores the default.
func (s *Server) SetAPIDomain(companyID int64, apiDomain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if apiDomain == "" {
		delete(s.apiDomains, companyID)
		return
	}
	s.apiDomains[companyID] = strings.TrimRight(apiDomain, "/")
}

// apiDomainLocked is the api_domain for a token response to r for companyID (r may be nil
// when there is no request: then only a configured base URL can answer).
func (s *Server) apiDomainLocked(r *http.Request, companyID int64) string {
	if d, ok := s.apiDomains[companyID]; ok {
		return d
	}
	if s.baseURL != "" || r == nil {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// AddUser adds u to the directory, or replaces the user with the same ID. Empty scopes mean
// Config.Scopes. Tokens already issued keep the scopes they were granted.
func (s *Server) AddUser(u User) error {
	if u.ID <= 0 || u.CompanyID <= 0 {
		return fmt.Errorf("pdsim: add user: id and company_id must be positive")
	}
	if len(u.Scopes) == 0 {
		u.Scopes = s.cfg.Scopes
	}
	u.Scopes = slices.Clone(u.Scopes)
	if u.CompanyDomain == "" {
		u.CompanyDomain = fmt.Sprintf("company%d", u.CompanyID)
	}
	if u.CompanyName == "" {
		u.CompanyName = u.CompanyDomain
	}
	if u.Name == "" {
		u.Name = fmt.Sprintf("User %d", u.ID)
	}
	if u.Email == "" {
		u.Email = fmt.Sprintf("user%d@%s.example", u.ID, u.CompanyDomain)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
	return nil
}

// Users returns the directory, ordered by id.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		u.Scopes = slices.Clone(u.Scopes)
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b User) int { return cmpInt64(a.ID, b.ID) })
	return out
}

// SetActingUser makes userID the user who approves the next /oauth/authorize. It returns
// ErrUnknownUser if userID is not in the directory.
func (s *Server) SetActingUser(userID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return fmt.Errorf("set acting user %d: %w", userID, ErrUnknownUser)
	}
	s.acting = userID
	return nil
}

// SetAuthorizeMode sets how /oauth/authorize answers until changed (default AuthorizeApprove).
func (s *Server) SetAuthorizeMode(m AuthorizeMode) error {
	if !m.valid() {
		return fmt.Errorf("pdsim: unknown authorize mode %q", m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
	return nil
}

// cmpInt64 orders int64 values for slices.SortFunc.
func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
