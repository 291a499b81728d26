package pdsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// adminRoutes registers the admin API under /_sim/. ServeHTTP only reaches it when
// Config.AdminEnabled is true. Bodies are JSON; errors answer {"error": "..."} with 400 or 404.
func (s *Server) adminRoutes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /_sim/faults", s.adminListFaults)
	m.HandleFunc("POST /_sim/faults", adminJSON(http.StatusCreated, http.StatusBadRequest, s.adminInjectFault))
	m.HandleFunc("DELETE /_sim/faults", s.adminClearFaults)
	m.HandleFunc("DELETE /_sim/faults/{id}", s.adminRemoveFault)
	m.HandleFunc("POST /_sim/release-hung", s.adminReleaseHung)
	m.HandleFunc("GET /_sim/clock", s.adminClock)
	m.HandleFunc("POST /_sim/clock/advance", s.adminAdvanceClock)
	m.HandleFunc("GET /_sim/counters", s.adminCounters)
	m.HandleFunc("DELETE /_sim/counters", s.adminResetCounters)
	m.HandleFunc("GET /_sim/users", s.adminListUsers)
	m.HandleFunc("POST /_sim/users", adminJSON(http.StatusCreated, http.StatusBadRequest, s.adminAddUser))
	m.HandleFunc("POST /_sim/acting-user", adminJSON(http.StatusNoContent, http.StatusNotFound, s.adminActingUser))
	m.HandleFunc("POST /_sim/authorize-mode", adminJSON(http.StatusNoContent, http.StatusBadRequest, s.adminAuthorizeMode))
	m.HandleFunc("POST /_sim/codes", adminJSON(http.StatusCreated, http.StatusNotFound, s.adminIssueCode))
	m.HandleFunc("POST /_sim/tokens", adminJSON(http.StatusCreated, http.StatusNotFound, s.adminIssueToken))
	m.HandleFunc("POST /_sim/api-tokens", adminJSON(http.StatusCreated, http.StatusNotFound, s.adminAddAPIToken))
	m.HandleFunc("POST /_sim/expire-access-tokens", adminJSON(http.StatusOK, http.StatusBadRequest, s.adminExpireAccessTokens))
	m.HandleFunc("POST /_sim/revoke-user", adminJSON(http.StatusOK, http.StatusBadRequest, s.adminRevokeUser))
	m.HandleFunc("POST /_sim/uninstall", s.adminUninstall)
	m.HandleFunc("GET /_sim/webhooks", s.adminWebhooks)
	m.HandleFunc("POST /_sim/gone", adminJSON(http.StatusNoContent, http.StatusBadRequest, s.adminGone))
	m.HandleFunc("POST /_sim/api-domain", adminJSON(http.StatusNoContent, http.StatusBadRequest, s.adminAPIDomain))
	m.HandleFunc("POST /_sim/account-state", adminJSON(http.StatusNoContent, http.StatusBadRequest, s.adminAccountState))
	m.HandleFunc("GET /_sim/budget", s.adminBudget)
	m.HandleFunc("POST /_sim/budget/spend", adminJSON(http.StatusOK, http.StatusBadRequest, s.adminSpendBudget))
	s.webhookAdminRoutes(m)
	m.HandleFunc("/_sim/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, errors.New("no such admin endpoint"))
	})
	s.admin = m
}

// adminError answers {"error": msg}.
func adminError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// decodeAdmin decodes a JSON request body into v, rejecting unknown fields.
func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		adminError(w, http.StatusBadRequest, fmt.Errorf("decode body: %w", err))
		return false
	}
	return true
}

// adminJSON serves an admin endpoint that takes a JSON body of type Req: it answers okStatus
// with do's result as JSON (204: no body), or errStatus {"error"} when do fails.
func adminJSON[Req any](okStatus, errStatus int, do func(r *http.Request, req Req) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if !decodeAdmin(w, r, &req) {
			return
		}
		out, err := do(r, req)
		if err != nil {
			adminError(w, errStatus, err)
			return
		}
		if okStatus == http.StatusNoContent {
			w.WriteHeader(okStatus)
			return
		}
		writeJSON(w, okStatus, out)
	}
}

// userRequest is the body of endpoints that name a user.
type userRequest struct {
	UserID int64 `json:"user_id"`
}

// adminListFaults serves GET /_sim/faults.
func (s *Server) adminListFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

// adminInjectFault serves POST /_sim/faults with a Fault body: {"id"}; an invalid fault is an
// error.
func (s *Server) adminInjectFault(_ *http.Request, f Fault) (any, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return map[string]string{"id": s.Inject(f)}, nil
}

// adminClearFaults serves DELETE /_sim/faults.
func (s *Server) adminClearFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

// adminRemoveFault serves DELETE /_sim/faults/{id}.
func (s *Server) adminRemoveFault(w http.ResponseWriter, r *http.Request) {
	if !s.RemoveFault(r.PathValue("id")) {
		adminError(w, http.StatusNotFound, errors.New("no such fault"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminReleaseHung serves POST /_sim/release-hung.
func (s *Server) adminReleaseHung(w http.ResponseWriter, _ *http.Request) {
	s.ReleaseHung()
	w.WriteHeader(http.StatusNoContent)
}

// adminClock serves GET /_sim/clock: {"now": RFC 3339}.
func (s *Server) adminClock(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"now": s.now().UTC().Format(time.RFC3339Nano)})
}

// adminAdvanceClock serves POST /_sim/clock/advance {"duration":"5m"} or {"seconds":301}.
func (s *Server) adminAdvanceClock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Duration string  `json:"duration"`
		Seconds  float64 `json:"seconds"`
	}
	if !decodeAdmin(w, r, &req) {
		return
	}
	d := time.Duration(req.Seconds * float64(time.Second))
	if req.Duration != "" {
		var err error
		if d, err = time.ParseDuration(req.Duration); err != nil {
			adminError(w, http.StatusBadRequest, fmt.Errorf("duration: %w", err))
			return
		}
	}
	if d <= 0 {
		adminError(w, http.StatusBadRequest, errors.New("give a positive duration or seconds"))
		return
	}
	s.AdvanceClock(d)
	s.adminClock(w, r)
}

// adminCounters serves GET /_sim/counters.
func (s *Server) adminCounters(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Counters())
}

// adminResetCounters serves DELETE /_sim/counters.
func (s *Server) adminResetCounters(w http.ResponseWriter, _ *http.Request) {
	s.ResetCounters()
	w.WriteHeader(http.StatusNoContent)
}

// adminListUsers serves GET /_sim/users.
func (s *Server) adminListUsers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Users())
}

// adminAddUser serves POST /_sim/users with a User body: {"id"}.
func (s *Server) adminAddUser(_ *http.Request, u User) (any, error) {
	if err := s.AddUser(u); err != nil {
		return nil, err
	}
	return map[string]int64{"id": u.ID}, nil
}

// adminActingUser serves POST /_sim/acting-user {"user_id"}.
func (s *Server) adminActingUser(_ *http.Request, req userRequest) (any, error) {
	return nil, s.SetActingUser(req.UserID)
}

// authorizeModeRequest is the body of POST /_sim/authorize-mode.
type authorizeModeRequest struct {
	Mode AuthorizeMode `json:"mode"`
}

// adminAuthorizeMode serves POST /_sim/authorize-mode {"mode"}.
func (s *Server) adminAuthorizeMode(_ *http.Request, req authorizeModeRequest) (any, error) {
	return nil, s.SetAuthorizeMode(req.Mode)
}

// issueCodeRequest is the body of POST /_sim/codes.
type issueCodeRequest struct {
	UserID      int64  `json:"user_id"`
	RedirectURI string `json:"redirect_uri"`
}

// adminIssueCode serves POST /_sim/codes {"user_id","redirect_uri"}: {"code"}.
func (s *Server) adminIssueCode(_ *http.Request, req issueCodeRequest) (any, error) {
	if req.RedirectURI == "" {
		req.RedirectURI = s.cfg.RedirectURI
	}
	code := s.IssueCode(req.UserID, req.RedirectURI)
	if code == "" {
		return nil, ErrUnknownUser
	}
	return map[string]string{"code": code}, nil
}

// adminIssueToken serves POST /_sim/tokens {"user_id"}: a token response.
func (s *Server) adminIssueToken(r *http.Request, req userRequest) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[req.UserID]
	if !ok {
		return nil, ErrUnknownUser
	}
	return s.issueLocked(r, s.grantForLocked(u)), nil
}

// adminAddAPIToken serves POST /_sim/api-tokens {"user_id"}: {"api_token"}.
func (s *Server) adminAddAPIToken(_ *http.Request, req userRequest) (any, error) {
	tok := s.AddAPIToken(req.UserID)
	if tok == "" {
		return nil, ErrUnknownUser
	}
	return map[string]string{"api_token": tok}, nil
}

// adminExpireAccessTokens serves POST /_sim/expire-access-tokens {"user_id"}: {"expired"}.
func (s *Server) adminExpireAccessTokens(_ *http.Request, req userRequest) (any, error) {
	return map[string]int{"expired": s.ExpireAccessTokens(req.UserID)}, nil
}

// adminRevokeUser serves POST /_sim/revoke-user {"user_id"}: {"revoked"}.
func (s *Server) adminRevokeUser(_ *http.Request, req userRequest) (any, error) {
	return map[string]int{"revoked": s.RevokeUser(req.UserID)}, nil
}

// adminUninstall serves POST /_sim/uninstall: sends the uninstall request and answers
// {"status": <receiver's status>}, or 502 {"error"} if it could not be sent.
func (s *Server) adminUninstall(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CallbackURL    string  `json:"callback_url"`
		UserID         int64   `json:"user_id"`
		StringIDs      bool    `json:"string_ids"`
		EpochTimestamp bool    `json:"epoch_timestamp"`
		ClientID       *string `json:"client_id"`
		ClientSecret   *string `json:"client_secret"`
		NoCredentials  bool    `json:"no_credentials"`
		KeepTokens     bool    `json:"keep_tokens"`
	}
	if !decodeAdmin(w, r, &req) {
		return
	}
	if req.CallbackURL == "" {
		adminError(w, http.StatusBadRequest, errors.New("callback_url is required"))
		return
	}
	var opts []UninstallOption
	if req.StringIDs {
		opts = append(opts, WithStringIDs())
	}
	if req.EpochTimestamp {
		opts = append(opts, WithEpochTimestamp())
	}
	if req.ClientID != nil || req.ClientSecret != nil {
		id, secret := s.cfg.ClientID, s.cfg.ClientSecret
		if req.ClientID != nil {
			id = *req.ClientID
		}
		if req.ClientSecret != nil {
			secret = *req.ClientSecret
		}
		opts = append(opts, WithCredentials(id, secret))
	}
	if req.NoCredentials {
		opts = append(opts, WithoutCredentials())
	}
	if req.KeepTokens {
		opts = append(opts, WithTokensKept())
	}
	status, err := s.Uninstall(r.Context(), req.CallbackURL, req.UserID, opts...)
	switch {
	case errors.Is(err, ErrUnknownUser):
		adminError(w, http.StatusNotFound, err)
	case err != nil:
		adminError(w, http.StatusBadGateway, err)
	default:
		writeJSON(w, http.StatusOK, map[string]int{"status": status})
	}
}

// adminWebhooks serves GET /_sim/webhooks?user_id=…: the user's webhooks.
func (s *Server) adminWebhooks(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.URL.Query().Get("user_id"), 10, 64)
	if err != nil {
		adminError(w, http.StatusBadRequest, errors.New("user_id query parameter is required"))
		return
	}
	out := []map[string]any{}
	now := s.now()
	for _, h := range s.Webhooks(id) {
		m := h.render(now)
		if h.HTTPAuthPassword != "" {
			// The admin API is for looking at traffic, not for reading secrets back.
			m["http_auth_password"] = "(set)"
		}
		out = append(out, m)
	}
	writeJSON(w, http.StatusOK, out)
}

// goneRequest is the body of POST /_sim/gone.
type goneRequest struct {
	Path string `json:"path"`
}

// adminGone serves POST /_sim/gone {"path"}: that path answers 410 from now on.
func (s *Server) adminGone(_ *http.Request, req goneRequest) (any, error) {
	if req.Path == "" || req.Path[0] != '/' {
		return nil, errors.New("path must start with /")
	}
	s.AddGonePath(req.Path)
	return nil, nil
}

// apiDomainRequest is the body of POST /_sim/api-domain.
type apiDomainRequest struct {
	CompanyID int64  `json:"company_id"`
	APIDomain string `json:"api_domain"`
}

// adminAPIDomain serves POST /_sim/api-domain {"company_id","api_domain"}.
func (s *Server) adminAPIDomain(_ *http.Request, req apiDomainRequest) (any, error) {
	s.SetAPIDomain(req.CompanyID, req.APIDomain)
	return nil, nil
}

// accountStateRequest is the body of POST /_sim/account-state.
type accountStateRequest struct {
	CompanyID int64        `json:"company_id"`
	State     AccountState `json:"state"`
}

// adminAccountState serves POST /_sim/account-state {"company_id","state"}: "open",
// "payment_required" (402), "feature_capped" (403 feature_capping_*) or "feature_disabled" (415).
func (s *Server) adminAccountState(_ *http.Request, req accountStateRequest) (any, error) {
	if req.CompanyID <= 0 {
		return nil, errors.New("company_id must be positive")
	}
	return nil, s.SetAccountState(req.CompanyID, req.State)
}

// adminBudget serves GET /_sim/budget?company_id=N: the company's Budget.
func (s *Server) adminBudget(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.URL.Query().Get("company_id"), 10, 64)
	if err != nil || id <= 0 {
		adminError(w, http.StatusBadRequest, errors.New("company_id must be a positive integer"))
		return
	}
	writeJSON(w, http.StatusOK, s.CompanyBudget(id))
}

// spendRequest is the body of POST /_sim/budget/spend.
type spendRequest struct {
	CompanyID int64 `json:"company_id"`
	// Tokens to charge; omitted or 0 spends the whole day's budget.
	Tokens int `json:"tokens"`
}

// adminSpendBudget serves POST /_sim/budget/spend {"company_id","tokens"}: charges the tokens
// (all of today's budget when tokens is 0) and answers the Budget.
func (s *Server) adminSpendBudget(_ *http.Request, req spendRequest) (any, error) {
	if req.CompanyID <= 0 {
		return nil, errors.New("company_id must be positive")
	}
	if req.Tokens == 0 {
		req.Tokens = 1 << 40
	}
	s.SpendBudget(req.CompanyID, req.Tokens)
	return s.CompanyBudget(req.CompanyID), nil
}
