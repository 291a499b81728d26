package main

import (
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

// uninstaller wires `pdctl uninstall`: the store reads the tokens to revoke (so the role needs
// kms:Decrypt, as for decrypt) and marks the installation uninstalled, the OAuth client revokes
// at Pipedrive, the audit line (who, as for decrypt) goes to the log on stderr. nil when
// TOKENS_TABLE or CLIENT_SECRET_ID is missing (the command says so).
func uninstaller(app *wire.App) *opscli.Uninstaller {
	if app.Store == nil || app.OAuth == nil {
		return nil
	}
	return &opscli.Uninstaller{Tokens: app.Store, OAuth: app.OAuth, Store: app.Store, Log: app.Log, Who: operator(app.AWS)}
}
