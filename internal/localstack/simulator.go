package localstack

import (
	"fmt"
	"net"
	"net/http"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
)

// startSimulator starts the embedded Pipedrive simulator on cfg.SimulatorAddr, sharing the
// stack's client credentials, with the demo user and redirectURI registered.
func (st *Stack) startSimulator(cfg Config, redirectURI string) error {
	simListener, err := net.Listen("tcp", cfg.SimulatorAddr)
	if err != nil {
		return fmt.Errorf("localstack: simulator listen: %w", err)
	}
	st.closers = append(st.closers, func() { simListener.Close() })
	st.SimulatorURL = "http://" + simListener.Addr().String()
	st.Simulator = pdsim.New(pdsim.Config{
		ClientID:            st.Credentials.ClientID,
		ClientSecret:        st.Credentials.ClientSecret,
		RedirectURI:         redirectURI,
		UserID:              DemoUserID,
		CompanyID:           DemoCompanyID,
		CompanyDomain:       "acme",
		CompanyName:         "Acme Ltd",
		Name:                "Dana Demo",
		Email:               "dana@acme.example",
		RotateRefreshTokens: cfg.RotateRefreshTokens,
		BaseURL:             st.SimulatorURL,
		AdminEnabled:        true,
		Logger:              cfg.Log.With("component", "pdsim"),
	})
	if err := st.Simulator.AddUser(pdsim.User{ID: DemoColleagueID, CompanyID: DemoCompanyID, CompanyDomain: "acme", CompanyName: "Acme Ltd",
		Name: "Cole League", Email: "cole@acme.example"}); err != nil {
		return fmt.Errorf("localstack: simulator colleague: %w", err)
	}
	var h http.Handler = st.Simulator
	if cfg.WrapSimulator != nil {
		h = cfg.WrapSimulator(h)
	}
	serve(st, simListener, h)
	return nil
}
