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
	m.HandleFunc("POST /_sim/faults", s.adminInjectFault)
	m.HandleFunc("DELETE /_sim/faults", s.adminClearFaults)
	m.HandleFunc("DELETE /_sim/faults/{id}", s.adminRemoveFault)
	m.HandleFunc("POST /_sim/release-hung", s.adminReleaseHung)
	m.HandleFunc("GET /_sim/clock", s.adminClock)
	m.HandleFunc("POST /_sim/clock/advance", s.adminAdvanceClock)
	m.HandleFunc("GET /_sim/counters", s.adminCounters)
	m.HandleFunc("DELETE /_sim/counters", s.adminResetCounters)
	m.HandleFunc("GET /_sim/users", s.adminListUsers)
	m.HandleFunc("POST /_sim/users", s.adminAddUser)
	m.HandleFunc("POST /_sim/acting-user", s.adminActingUser)
	m.HandleFunc("POST /_sim/authorize-mode", s.adminAuthorizeMode)
	m.HandleFunc("POST /_sim/codes", s.adminIssueCode)
	m.HandleFunc("POST /_sim/tokens", s.adminIssueToken)
	m.HandleFunc("POST /_sim/api-tokens", s.adminAddAPIToken)
	m.HandleFunc("POST /_sim/expire-access-tokens", s.adminExpireAccessTokens)
	m.HandleFunc("POST /_sim/revoke-user", s.adminRevokeUser)
	m.HandleFunc("POST /_sim/uninstall", s.adminUninstall)
	m.HandleFunc("GET /_sim/webhooks", s.adminWebhooks)
	m.HandleFunc("POST /_sim/gone", s.adminGone)
	m.HandleFunc("POST /_sim/api-domain", s.adminAPIDomain)
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

// userRequest is the body of endpoints that name a user.
type userRequest struct {
	UserID int64 `json:"user_id"`
}

// adminListFaults serves GET /_sim/faults.
func (s *Server) adminListFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

// adminInjectFault serves POST /_sim/faults with a Fault body; answers 201 {"id"}.
func (s *Server) adminInjectFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if !decodeAdmin(w, r, &f) {
		return
	}
	if err := f.Validate(); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": s.Inject(f)})
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

// adminAddUser serves POST /_sim/users with a User body.
func (s *Server) adminAddUser(w http.ResponseWriter, r *http.Request) {
	var u User
	if !decodeAdmin(w, r, &u) {
		return
	}
	if err := s.AddUser(u); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"id": u.ID})
}

// adminActingUser serves POST /_sim/acting-user {"user_id"}.
func (s *Server) adminActingUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !decodeAdmin(w, r, &req) {
		return
	}
	if err := s.SetActingUser(req.UserID); err != nil {
		adminError(w, http.StatusNotFound, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminAuthorizeMode serves POST /_sim/authorize-mode {"mode"}.
func (s *Server) adminAuthorizeMode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Mode AuthorizeMode `json:"mode"`
	}
	if !decodeAdmin(w, r, &req) {
		return
	}
	if err := s.SetAuthorizeMode(req.Mode); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminIssueCode serves POST /_sim/codes {"user_id","redirect_uri"}: {"code"}.
func (s *Server) adminIssueCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserID      int64  `json:"user_id"`
		RedirectURI string `json:"redirect_uri"`
	}
	if !decodeAdmin(w, r, &req) {
		return
	}
	if req.RedirectURI == "" {
		req.RedirectURI = s.cfg.RedirectURI
	}
	code := s.IssueCode(req.UserID, req.RedirectURI)
	if code == "" {
		adminError(w, http.StatusNotFound, ErrUnknownUser)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"code": code})
}

// adminIssueToken serves POST /_sim/tokens {"user_id"}: a token response.
func (s *Server) adminIssueToken(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !decodeAdmin(w, r, &req) {
		return
	}
	s.mu.Lock()
	u, ok := s.users[req.UserID]
	var tok Token
	if ok {
		tok = s.issueLocked(r, s.grantForLocked(u))
	}
	s.mu.Unlock()
	if !ok {
		adminError(w, http.StatusNotFound, ErrUnknownUser)
		return
	}
	writeJSON(w, http.StatusCreated, tok)
}

// adminAddAPIToken serves POST /_sim/api-tokens {"user_id"}: {"api_token"}.
func (s *Server) adminAddAPIToken(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !decodeAdmin(w, r, &req) {
		return
	}
	tok := s.AddAPIToken(req.UserID)
	if tok == "" {
		adminError(w, http.StatusNotFound, ErrUnknownUser)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"api_token": tok})
}

// adminExpireAccessTokens serves POST /_sim/expire-access-tokens {"user_id"}: {"expired"}.
func (s *Server) adminExpireAccessTokens(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !decodeAdmin(w, r, &req) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"expired": s.ExpireAccessTokens(req.UserID)})
}

// adminRevokeUser serves POST /_sim/revoke-user {"user_id"}: {"revoked"}.
func (s *Server) adminRevokeUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !decodeAdmin(w, r, &req) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"revoked": s.RevokeUser(req.UserID)})
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
	for _, h := range s.Webhooks(id) {
		out = append(out, h.render())
	}
	writeJSON(w, http.StatusOK, out)
}

// adminGone serves POST /_sim/gone {"path"}: that path answers 410 from now on.
func (s *Server) adminGone(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path string `json:"path"`
	}
	if !decodeAdmin(w, r, &req) {
		return
	}
	if req.Path == "" || req.Path[0] != '/' {
		adminError(w, http.StatusBadRequest, errors.New("path must start with /"))
		return
	}
	s.AddGonePath(req.Path)
	w.WriteHeader(http.StatusNoContent)
}

// adminAPIDomain serves POST /_sim/api-domain {"company_id","api_domain"}.
func (s *Server) adminAPIDomain(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CompanyID int64  `json:"company_id"`
		APIDomain string `json:"api_domain"`
	}
	if !decodeAdmin(w, r, &req) {
		return
	}
	s.SetAPIDomain(req.CompanyID, req.APIDomain)
	w.WriteHeader(http.StatusNoContent)
}
