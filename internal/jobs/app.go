package jobs

import (
	"encoding/json"
	"strings"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// Kinds of the app's own work (the public package pdkit builds an app's handlers into runners
// of these kinds).
const (
	// KindAppInstall runs the app's install hook for a new installation version, queued by the
	// install after the installation is stored. Its ID is "app_install:<company>:<user>:<run>".
	KindAppInstall = "app_install"
	// KindAppUninstall runs the app's uninstall hook, queued after an uninstall is recorded.
	KindAppUninstall = "app_uninstall"
	// AppKindPrefix starts the kind of each job kind an app defines: "app.<name>".
	AppKindPrefix = "app."
)

// MaxAppKindName bounds the name of an app's job kind.
const MaxAppKindName = 40

// AppKind is the job kind of the app's job kind name ("app." + name).
func AppKind(name string) string { return AppKindPrefix + name }

// ValidAppKindName reports whether name can name an app's job kind: 1 to MaxAppKindName
// lowercase letters, digits and underscores, starting with a letter.
func ValidAppKindName(name string) bool {
	if name == "" || len(name) > MaxAppKindName || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	return strings.IndexFunc(name, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_'
	}) < 0
}

// AppJob is the job of the app's kind name for installation id with idempotency key key and
// payload (JSON, may be nil): its ID is "app.<name>:<company>:<user>:<key>", so the same key
// for the same installation and kind is one job, run once.
func AppJob(name string, id installation.ID, key string, payload json.RawMessage) Job {
	kind := AppKind(name)
	return Job{ID: kind + ":" + id.String() + ":" + key, Kind: kind, CompanyID: id.CompanyID, UserID: id.UserID, Body: payload}
}

// AppKey is the idempotency key the app gave j (AppJob), "" when j is not an app's job.
func AppKey(j Job) string {
	prefix := j.Kind + ":" + installation.ID{CompanyID: j.CompanyID, UserID: j.UserID}.String() + ":"
	if !strings.HasPrefix(j.ID, prefix) {
		return ""
	}
	return j.ID[len(prefix):]
}

// AppInstall is the app_install job of installation id; run tells one install from another
// ("v<version>"), as for RegisterWebhooks.
func AppInstall(id installation.ID, run string) Job {
	return Job{ID: KindAppInstall + ":" + id.String() + ":" + run, Kind: KindAppInstall, CompanyID: id.CompanyID, UserID: id.UserID}
}

// AppUninstall is the app_uninstall job of installation id; run tells one uninstall from
// another ("v<version>" of the installation uninstalled).
func AppUninstall(id installation.ID, run string) Job {
	return Job{ID: KindAppUninstall + ":" + id.String() + ":" + run, Kind: KindAppUninstall, CompanyID: id.CompanyID, UserID: id.UserID}
}
