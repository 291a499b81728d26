package infra

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Function is an AWS::Serverless::Function of the template, with Globals.Function applied.
type Function struct {
	// Timeout is the function's Timeout, else the Globals' one, else SAM's 3 seconds.
	Timeout time.Duration
	// MemorySize is in MB: the function's, else the Globals', else SAM's 128.
	MemorySize int
	// Environment is Globals.Function.Environment.Variables overlaid with the function's
	// own; resolve it with Spec.FunctionEnv or Resources.FunctionEnv.
	Environment map[string]Value
	// Routes are its HttpApi events, in the order of their event names.
	Routes []Route
	// Schedules are its ScheduleV2 events, in the order of their event names.
	Schedules []Schedule
	// Queues are its SQS event sources, in the order of their event names.
	Queues []QueueSource
}

// Route is an HttpApi event: the function answers Method Path.
type Route struct {
	Method string
	Path   string
}

// Schedule is a ScheduleV2 event.
type Schedule struct {
	// Expression is the schedule expression, a parameter at its default
	// ("rate(5 minutes)", "cron(…)").
	Expression string
	// MaximumRetryAttempts is RetryPolicy.MaximumRetryAttempts, or -1 when not set.
	MaximumRetryAttempts int
}

var rateRE = regexp.MustCompile(`^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$`)

// Every returns the period of a rate() expression; false for cron() and at().
func (s Schedule) Every() (time.Duration, bool) {
	m := rateRE.FindStringSubmatch(s.Expression)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return 0, false
	}
	unit := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[strings.TrimSuffix(m[2], "s")]
	return time.Duration(n) * unit, true
}

// QueueSource is an SQS event: Lambda polls Queue and invokes the function with batches.
type QueueSource struct {
	// Queue is the logical ID of the queue (!GetAtt Queue.Arn).
	Queue string
	// BatchSize is the most messages per invocation (SAM's default 10).
	BatchSize int
	// FunctionResponseTypes lists ReportBatchItemFailures when the function reports
	// failed messages one by one.
	FunctionResponseTypes []string
	// MaximumConcurrency is ScalingConfig.MaximumConcurrency (a parameter at its default), the
	// most concurrent invocations the source starts; 0 when unset (no limit but the account's).
	MaximumConcurrency int
}

// ReportsBatchItemFailures reports whether FunctionResponseTypes has ReportBatchItemFailures.
func (q QueueSource) ReportsBatchItemFailures() bool {
	return slices.Contains(q.FunctionResponseTypes, "ReportBatchItemFailures")
}

// EnvLogLevel is the variable Lambda derives from LoggingConfig.ApplicationLogLevel.
const EnvLogLevel = "AWS_LAMBDA_LOG_LEVEL"

// SAM's defaults for what neither the function nor Globals set.
const (
	defaultTimeout    = 3
	defaultMemorySize = 128
	defaultBatchSize  = 10
)

// parseFunctions reads Globals.Function and every AWS::Serverless::Function.
func (s *Spec) parseFunctions(t *template) error {
	g := t.Globals.Function
	globalsPath := "Globals.Function"
	if err := s.checkEnv(g, globalsPath); err != nil {
		return err
	}
	if g.Events != nil || g.Policies != nil || g.CodeUri != "" {
		return errAt(globalsPath, "Events, Policies and CodeUri are not global settings")
	}
	s.FunctionEnvRefs, s.FunctionEnvLiterals = map[string]string{}, map[string]string{}
	var globalEnv map[string]Value
	if g.Environment != nil {
		globalEnv = g.Environment.Variables
	}
	for name, v := range globalEnv {
		if v.Kind == Scalar {
			s.FunctionEnvLiterals[name] = v.Text
		} else if id, ok := v.RefTarget(); ok && isManaged(id) {
			s.FunctionEnvRefs[name] = id
		}
		// Otherwise a parameter: its value comes from the deployment, not from infra.
	}

	s.Functions = map[string]Function{}
	for _, id := range slices.Sorted(maps.Keys(t.Resources.Others)) {
		res := t.Resources.Others[id]
		if res.Type != "AWS::Serverless::Function" {
			continue
		}
		path := join("Resources", id)
		if res.Condition != "" {
			return errAt(join(path, "Condition"), "conditional functions are not supported by internal/infra")
		}
		if res.Properties.Kind == 0 {
			return errAt(path, "missing Properties")
		}
		// yaml's Node.Decode would not reject unknown keys: decode the properties again as
		// a document of their own.
		raw, err := yaml.Marshal(&res.Properties)
		if err != nil {
			return errAt(join(path, "Properties"), "%v", err)
		}
		var p functionSettings
		if err := decodeStrict(raw, &p, join(path, "Properties")); err != nil {
			return err
		}
		fn, err := s.function(g, p, join(path, "Properties"))
		if err != nil {
			return err
		}
		s.Functions[id] = fn
	}
	return nil
}

func (s *Spec) function(g, p functionSettings, path string) (Function, error) {
	fn := Function{
		Timeout:     time.Duration(firstInt(p.Timeout, g.Timeout, defaultTimeout)) * time.Second,
		MemorySize:  firstInt(p.MemorySize, g.MemorySize, defaultMemorySize),
		Environment: map[string]Value{},
	}
	if err := s.checkEnv(p, path); err != nil {
		return fn, err
	}
	if g.Environment != nil {
		maps.Copy(fn.Environment, g.Environment.Variables)
	}
	if p.Environment != nil {
		maps.Copy(fn.Environment, p.Environment.Variables)
	}
	// Lambda sets AWS_LAMBDA_LOG_LEVEL from LoggingConfig.ApplicationLogLevel (the function's,
	// else the Globals'); the emulator and the local stack get it the same way.
	for _, lc := range []*loggingConfig{p.LoggingConfig, g.LoggingConfig} {
		if lc != nil && lc.ApplicationLogLevel != nil {
			fn.Environment[EnvLogLevel] = *lc.ApplicationLogLevel
			break
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Events)) {
		ev := p.Events[name]
		at := join(path, "Events."+name)
		e := ev.Properties
		present := map[string]bool{
			"ApiId": e.ApiId != nil, "Method": e.Method != "", "Path": e.Path != "",
			"ScheduleExpression": e.ScheduleExpression != nil, "RetryPolicy": e.RetryPolicy != nil,
			"Queue": e.Queue != nil, "BatchSize": e.BatchSize != nil, "FunctionResponseTypes": e.FunctionResponseTypes != nil,
			"ScalingConfig": e.ScalingConfig != nil,
		}
		var allowed []string
		switch ev.Type {
		case "HttpApi":
			allowed = []string{"ApiId", "Method", "Path"}
			if e.Method == "" || e.Path == "" {
				return fn, errAt(join(at, "Properties"), "missing Method or Path")
			}
			if !strings.HasPrefix(string(e.Path), "/") {
				return fn, errAt(join(at, "Properties.Path"), "want a path starting with /, got %q", e.Path)
			}
			fn.Routes = append(fn.Routes, Route{Method: strings.ToUpper(string(e.Method)), Path: string(e.Path)})
		case "ScheduleV2":
			allowed = []string{"ScheduleExpression", "RetryPolicy"}
			if e.ScheduleExpression == nil {
				return fn, errAt(join(at, "Properties"), "missing ScheduleExpression")
			}
			expr, err := s.Scope(nil).Resolve(*e.ScheduleExpression)
			if err != nil {
				return fn, errAt(join(at, "Properties.ScheduleExpression"), "%v", err)
			}
			sch := Schedule{Expression: expr, MaximumRetryAttempts: -1}
			if e.RetryPolicy != nil && e.RetryPolicy.MaximumRetryAttempts != nil {
				sch.MaximumRetryAttempts = int(*e.RetryPolicy.MaximumRetryAttempts)
			}
			fn.Schedules = append(fn.Schedules, sch)
		case "SQS":
			allowed = []string{"Queue", "BatchSize", "FunctionResponseTypes", "ScalingConfig"}
			if e.Queue == nil {
				return fn, errAt(join(at, "Properties"), "missing Queue")
			}
			queue, attr, ok := e.Queue.GetAttTarget()
			if !ok || attr != "Arn" {
				return fn, errAt(join(at, "Properties.Queue"), "want !GetAtt <Queue>.Arn, got %s", e.Queue)
			}
			src := QueueSource{Queue: queue, BatchSize: firstInt(e.BatchSize, nil, defaultBatchSize)}
			for _, rt := range e.FunctionResponseTypes {
				src.FunctionResponseTypes = append(src.FunctionResponseTypes, string(rt))
			}
			if sc := e.ScalingConfig; sc != nil && sc.MaximumConcurrency != nil {
				at := join(at, "Properties.ScalingConfig.MaximumConcurrency")
				raw, err := s.Scope(nil).Resolve(*sc.MaximumConcurrency)
				if err != nil {
					return fn, errAt(at, "%v", err)
				}
				// AWS accepts 2 to 1000.
				if src.MaximumConcurrency, err = strconv.Atoi(raw); err != nil || src.MaximumConcurrency < 2 || src.MaximumConcurrency > 1000 {
					return fn, errAt(at, "want 2 to 1000, got %q", raw)
				}
			}
			fn.Queues = append(fn.Queues, src)
		default:
			return fn, errAt(join(at, "Type"), "want HttpApi, ScheduleV2 or SQS, got %q", ev.Type)
		}
		for _, key := range slices.Sorted(maps.Keys(present)) {
			if present[key] && !slices.Contains(allowed, key) {
				return fn, errAt(join(at, "Properties."+key), "not a property of a %s event", ev.Type)
			}
		}
	}
	return fn, nil
}

// checkEnv resolves each of f's environment variables with placeholders for the managed
// resources, so that a value infra could not provide fails at Parse, not at Provision.
func (s *Spec) checkEnv(f functionSettings, path string) error {
	if f.Environment == nil {
		return nil
	}
	scope := s.Scope(func(name string) (string, bool) {
		return "<" + name + ">", isManaged(name) || name == HTTPAPIID || name == "AWS::Region"
	})
	for _, name := range slices.Sorted(maps.Keys(f.Environment.Variables)) {
		if _, err := scope.Resolve(f.Environment.Variables[name]); err != nil && !errors.Is(err, ErrNoValue) {
			return errAt(join(path, "Environment.Variables."+name), "%v", err)
		}
	}
	return nil
}

func firstInt(a, b *integer, def int) int {
	switch {
	case a != nil:
		return int(*a)
	case b != nil:
		return int(*b)
	}
	return def
}
