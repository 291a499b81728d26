package pdsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// UninstallOption changes the uninstall request Uninstall sends, for tests of the receiving
// side (the field types and timestamp format are unconfirmed, so receivers must accept both).
type UninstallOption func(*uninstallOptions)

// uninstallOptions are the choices UninstallOption makes.
type uninstallOptions struct {
	stringIDs     bool
	epoch         bool
	clientID      string
	clientSecret  string
	noCredentials bool
	keepTokens    bool
}

// WithStringIDs sends company_id and user_id as JSON strings instead of numbers.
func WithStringIDs() UninstallOption {
	return func(o *uninstallOptions) { o.stringIDs = true }
}

// WithEpochTimestamp sends timestamp as Unix seconds instead of an ISO-8601 string.
func WithEpochTimestamp() UninstallOption {
	return func(o *uninstallOptions) { o.epoch = true }
}

// WithCredentials sends these Basic credentials (and client_id) instead of the configured
// ones, to test that the receiver rejects them.
func WithCredentials(clientID, clientSecret string) UninstallOption {
	return func(o *uninstallOptions) { o.clientID, o.clientSecret = clientID, clientSecret }
}

// WithoutCredentials sends no Authorization header.
func WithoutCredentials() UninstallOption {
	return func(o *uninstallOptions) { o.noCredentials = true }
}

// WithTokensKept skips revoking the user's tokens, to test a receiver that must not trust the
// request before checking its credentials.
func WithTokensKept() UninstallOption {
	return func(o *uninstallOptions) { o.keepTokens = true }
}

// Uninstall does what Pipedrive does when userID uninstalls the app: it revokes the user's
// tokens and webhooks, then sends DELETE callbackURL with JSON
// {"client_id","company_id","user_id","timestamp"} and HTTP Basic client_id:client_secret.
// It returns the receiver's status (which Pipedrive ignores), or an error if the user is
// unknown or the request could not be sent.
func (s *Server) Uninstall(ctx context.Context, callbackURL string, userID int64, opts ...UninstallOption) (int, error) {
	o := uninstallOptions{clientID: s.cfg.ClientID, clientSecret: s.cfg.ClientSecret}
	for _, opt := range opts {
		opt(&o)
	}
	s.mu.Lock()
	u, ok := s.users[userID]
	if !ok {
		s.mu.Unlock()
		return 0, fmt.Errorf("uninstall user %d: %w", userID, ErrUnknownUser)
	}
	revoked := 0
	if !o.keepTokens {
		revoked = s.revokeUserLocked(userID)
	}
	now := s.nowLocked()
	s.counters.Uninstalls++
	s.mu.Unlock()

	var companyID, uid any = u.CompanyID, u.ID
	if o.stringIDs {
		companyID, uid = strconv.FormatInt(u.CompanyID, 10), strconv.FormatInt(u.ID, 10)
	}
	var ts any = now.UTC().Format(time.RFC3339)
	if o.epoch {
		ts = now.Unix()
	}
	body, err := json.Marshal(map[string]any{"client_id": o.clientID, "company_id": companyID, "user_id": uid, "timestamp": ts})
	if err != nil {
		return 0, fmt.Errorf("uninstall user %d: encode: %w", userID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, callbackURL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("uninstall user %d: build request: %w", userID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if !o.noCredentials {
		req.SetBasicAuth(o.clientID, o.clientSecret)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		s.log.Info("uninstall", "action", "uninstall", "company_id", u.CompanyID, "user_id", u.ID, "tokens_revoked", revoked, "reason", "send_failed")
		return 0, fmt.Errorf("uninstall user %d: send: %w", userID, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	s.log.Info("uninstall", "action", "uninstall", "company_id", u.CompanyID, "user_id", u.ID, "tokens_revoked", revoked, "status", resp.StatusCode)
	return resp.StatusCode, nil
}
