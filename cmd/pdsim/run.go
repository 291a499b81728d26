package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
)

// shutdownGrace is how long in-flight requests get after a signal.
const shutdownGrace = 5 * time.Second

// retryTick is how often due webhook retries are looked for (they are due 3, 30 and 150 s
// after a failure, so a second is precise enough).
const retryTick = time.Second

// options are the command's settings, from flags over PDSIM_* environment over defaults.
type options struct {
	addr, baseURL                        string
	clientID, clientSecret, redirectURI  string
	rotate                               bool
	rateLimit, dailyBudget, webhookLimit int
	accessTTL, codeTTL                   time.Duration
	webhookTimeout                       time.Duration
	webhookNumericIDs                    bool
	userID, companyID                    int64
	companyDomain, companyName           string
	userName, userEmail, scopes          string
	gone                                 string
	plan, serverTZ                       string
	tokenBudget, gateway401, v1Retired   bool
	seed                                 uint64
	logLevel                             string
}

// parseOptions reads flags from args; each flag's default comes from its PDSIM_* variable
// (via getenv) when set. Output of -h goes to usage.
func parseOptions(args []string, getenv func(string) string, usage io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("pdsim", flag.ContinueOnError)
	fs.SetOutput(usage)
	var envErrs []error
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	str := func(p *string, name, envName, def, help string) {
		fs.StringVar(p, name, env(envName, def), help+" (env "+envName+")")
	}
	integer := func(p *int, name, envName string, def int, help string) {
		v, err := strconv.Atoi(env(envName, strconv.Itoa(def)))
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s: %w", envName, err))
		}
		fs.IntVar(p, name, v, help+" (env "+envName+")")
	}
	int64v := func(p *int64, name, envName string, def int64, help string) {
		v, err := strconv.ParseInt(env(envName, strconv.FormatInt(def, 10)), 10, 64)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s: %w", envName, err))
		}
		fs.Int64Var(p, name, v, help+" (env "+envName+")")
	}
	duration := func(p *time.Duration, name, envName string, def time.Duration, help string) {
		v, err := time.ParseDuration(env(envName, def.String()))
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s: %w", envName, err))
		}
		fs.DurationVar(p, name, v, help+" (env "+envName+")")
	}

	str(&o.addr, "addr", "PDSIM_ADDR", "127.0.0.1:8787", "listen address")
	str(&o.baseURL, "base-url", "PDSIM_BASE_URL", "", "URL clients reach the simulator at, returned as api_domain (default http://<listen address>)")
	str(&o.clientID, "client-id", "PDSIM_CLIENT_ID", pdsim.DefaultClientID, "OAuth client id")
	// The secret's flag default stays empty so that -h never prints a secret from the environment.
	fs.StringVar(&o.clientSecret, "client-secret", "", "OAuth client secret (env PDSIM_CLIENT_SECRET; default "+pdsim.DefaultClientSecret+")")
	str(&o.redirectURI, "redirect-uri", "PDSIM_REDIRECT_URI", pdsim.DefaultRedirectURI, "registered redirect URI (Developer Hub value)")
	rotate, err := strconv.ParseBool(env("PDSIM_ROTATE", "true"))
	if err != nil {
		envErrs = append(envErrs, fmt.Errorf("PDSIM_ROTATE: %w", err))
	}
	fs.BoolVar(&o.rotate, "rotate", rotate, "rotate refresh tokens: a used one becomes invalid (env PDSIM_ROTATE)")
	integer(&o.rateLimit, "rate-limit", "PDSIM_RATE_LIMIT", pdsim.DefaultRateLimit, "API requests per token per 2-second window")
	integer(&o.dailyBudget, "daily-budget", "PDSIM_DAILY_BUDGET", 0, "daily token budget per company (calls cost 2 to 40 tokens, v2 half), 0 = -token-budget's or none")
	str(&o.plan, "plan", "PDSIM_PLAN", string(pdsim.PlanEssential), "plan: essential, advanced, professional or enterprise (budget multiplier 1, 2, 5, 7)")
	str(&o.serverTZ, "server-tz", "PDSIM_SERVER_TZ", "UTC", "IANA timezone whose midnight resets the daily budget")
	boolean := func(p *bool, name, envName string, def bool, help string) {
		v, err := strconv.ParseBool(env(envName, strconv.FormatBool(def)))
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s: %w", envName, err))
		}
		fs.BoolVar(p, name, v, help+" (env "+envName+")")
	}
	boolean(&o.tokenBudget, "token-budget", "PDSIM_TOKEN_BUDGET", false, "documented daily budget: 30,000 tokens × plan multiplier per company")
	boolean(&o.gateway401, "gateway-401", "PDSIM_GATEWAY_401", true, "answer bad tokens as the live gateway (\"unauthorized access\", x-401-by-gw)")
	boolean(&o.v1Retired, "v1-retired", "PDSIM_V1_RETIRED", false, "answer 410 on v1 deals, persons, organizations and activities (out of support since 2026-08-01)")
	integer(&o.webhookLimit, "webhook-limit", "PDSIM_WEBHOOK_LIMIT", pdsim.DefaultWebhookLimit, "webhooks per user")
	duration(&o.webhookTimeout, "webhook-timeout", "PDSIM_WEBHOOK_TIMEOUT", pdsim.DefaultWebhookTimeout, "how long a webhook receiver may take to answer")
	numericIDs, err := strconv.ParseBool(env("PDSIM_WEBHOOK_NUMERIC_IDS", "false"))
	if err != nil {
		envErrs = append(envErrs, fmt.Errorf("PDSIM_WEBHOOK_NUMERIC_IDS: %w", err))
	}
	fs.BoolVar(&o.webhookNumericIDs, "webhook-numeric-ids", numericIDs, "render ids in v2 webhook meta as numbers instead of strings (env PDSIM_WEBHOOK_NUMERIC_IDS)")
	duration(&o.accessTTL, "access-ttl", "PDSIM_ACCESS_TTL", pdsim.DefaultAccessTokenTTL, "access token lifetime")
	duration(&o.codeTTL, "code-ttl", "PDSIM_CODE_TTL", pdsim.DefaultCodeTTL, "authorization code lifetime")
	int64v(&o.userID, "user-id", "PDSIM_USER_ID", pdsim.DefaultUserID, "default user id")
	int64v(&o.companyID, "company-id", "PDSIM_COMPANY_ID", pdsim.DefaultCompanyID, "default user's company id")
	str(&o.companyDomain, "company-domain", "PDSIM_COMPANY_DOMAIN", pdsim.DefaultCompanyDomain, "default user's company domain")
	str(&o.companyName, "company-name", "PDSIM_COMPANY_NAME", pdsim.DefaultCompanyName, "default user's company name")
	str(&o.userName, "user-name", "PDSIM_USER_NAME", pdsim.DefaultUserName, "default user's name")
	str(&o.userEmail, "user-email", "PDSIM_USER_EMAIL", pdsim.DefaultUserEmail, "default user's email")
	str(&o.scopes, "scopes", "PDSIM_SCOPES", strings.Join(pdsim.DefaultScopes, ","), "comma-separated scopes granted")
	str(&o.gone, "gone", "PDSIM_GONE", strings.Join(pdsim.DefaultGonePaths, ","), "comma-separated API paths answering 410")
	seed, err := strconv.ParseUint(env("PDSIM_SEED", "1"), 10, 64)
	if err != nil {
		envErrs = append(envErrs, fmt.Errorf("PDSIM_SEED: %w", err))
	}
	fs.Uint64Var(&o.seed, "seed", seed, "seed for fault fractions (env PDSIM_SEED)")
	str(&o.logLevel, "log-level", "PDSIM_LOG_LEVEL", "info", "debug, info, warn or error")

	if err := errors.Join(envErrs...); err != nil {
		return o, fmt.Errorf("environment: %w", err)
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.clientSecret == "" {
		o.clientSecret = env("PDSIM_CLIENT_SECRET", pdsim.DefaultClientSecret)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.rateLimit < 1 {
		return o, errors.New("-rate-limit must be at least 1")
	}
	if _, err := time.LoadLocation(o.serverTZ); err != nil {
		return o, fmt.Errorf("-server-tz: %w", err)
	}
	return o, nil
}

// config turns options into the simulator's Config.
func (o options) config(baseURL string, logger *slog.Logger) pdsim.Config {
	return pdsim.Config{
		ClientID:            o.clientID,
		ClientSecret:        o.clientSecret,
		RedirectURI:         o.redirectURI,
		UserID:              o.userID,
		CompanyID:           o.companyID,
		CompanyDomain:       o.companyDomain,
		CompanyName:         o.companyName,
		Name:                o.userName,
		Email:               o.userEmail,
		Scopes:              splitList(o.scopes),
		RotateRefreshTokens: o.rotate,
		AccessTokenTTL:      o.accessTTL,
		CodeTTL:             o.codeTTL,
		RateLimit:           o.rateLimit,
		DailyBudget:         o.dailyBudget,
		TokenBudget:         o.tokenBudget,
		Plan:                pdsim.Plan(o.plan),
		ServerTimezone:      loadLocation(o.serverTZ),
		GatewayUnauthorized: o.gateway401,
		V1Retired:           o.v1Retired,
		WebhookLimit:        o.webhookLimit,
		WebhookTimeout:      o.webhookTimeout,
		WebhookIDsAsNumbers: o.webhookNumericIDs,
		GonePaths:           append([]string{}, splitList(o.gone)...),
		BaseURL:             baseURL,
		Seed:                o.seed,
		AdminEnabled:        true,
		Logger:              logger,
	}
}

// loadLocation is the named timezone, UTC when it cannot be loaded (parseOptions checked it).
func loadLocation(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return l
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// run serves the simulator until ctx ends, then shuts down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parseOptions(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level}))

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	baseURL := strings.TrimRight(o.baseURL, "/")
	if baseURL == "" {
		baseURL = "http://" + ln.Addr().String()
	}
	sim := pdsim.New(o.config(baseURL, logger))
	// The binary runs on the real clock (plus /_sim/clock/advance): retries fire by themselves.
	sim.StartDeliveryLoop(ctx, retryTick)
	srv := &http.Server{
		Handler:           accessLog(logger, sim),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("listening", "action", "start", "base_url", baseURL,
		"authorize_url", baseURL+"/oauth/authorize", "token_url", baseURL+"/oauth/token",
		"client_id", o.clientID, "redirect_uri", o.redirectURI, "rotate_refresh_tokens", o.rotate,
		"rate_limit", o.rateLimit, "daily_budget", o.dailyBudget)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "action", "stop")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Hung requests would otherwise hold Shutdown for the whole grace period; keep releasing
	// them until it returns, since one may start hanging just after a single release.
	released := make(chan struct{})
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			sim.ReleaseHung()
			select {
			case <-released:
				return
			case <-tick.C:
			}
		}
	}()
	shutdownErr := srv.Shutdown(sctx)
	close(released)
	if shutdownErr != nil {
		return fmt.Errorf("shutdown: %w", shutdownErr)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped", "action", "stop")
	return nil
}

// accessLog logs one event per request: method, path (never the query, which can hold codes
// and state), status and duration.
func accessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			logger.Info("request", "action", "request", "method", r.Method, "path", r.URL.Path,
				"status", sw.status, "duration_ms", time.Since(start).Milliseconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter records the status; Unwrap keeps Hijack (dropped-connection faults) working.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the status.
func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Write records an implicit 200.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the underlying writer for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
