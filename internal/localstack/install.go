package localstack

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// Install installs the app for the simulator's default user as that user would: the install
// link, Pipedrive's consent (approved), the callback. It returns the stored installation's id
// once the callback answered 200.
func (st *Stack) Install(ctx context.Context) (installation.ID, error) {
	client := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, _, err := get(ctx, client, st.GatewayURL+"/oauth/install")
	if err != nil {
		return installation.ID{}, err
	}
	authorize, err := expectRedirect(resp, st.SimulatorURL+"/oauth/authorize")
	if err != nil {
		return installation.ID{}, fmt.Errorf("GET /oauth/install: %w", err)
	}
	if resp, _, err = get(ctx, client, authorize.String()); err != nil {
		return installation.ID{}, err
	}
	callback, err := expectRedirect(resp, st.GatewayURL+"/oauth/callback")
	if err != nil {
		return installation.ID{}, fmt.Errorf("authorize: %w", err)
	}
	resp, body, err := get(ctx, client, callback.String())
	if err != nil {
		return installation.ID{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return installation.ID{}, fmt.Errorf("GET /oauth/callback = %d, want 200: %.300s", resp.StatusCode, body)
	}
	return installation.ID{CompanyID: DemoCompanyID, UserID: DemoUserID}, nil
}
