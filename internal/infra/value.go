package infra

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kind is the shape of a Value.
type Kind int

// The shapes of a Value.
const (
	Null   Kind = iota // an absent or null value
	Scalar             // a plain string, number or boolean, as written (Text)
	List               // a sequence (Items)
	Map                // a mapping (Fields)
	Func               // an intrinsic function call (Fn, Items as its arguments)
)

// Value is a template value that may hold CloudFormation intrinsic functions, decoded from
// the short tags (!Ref X, !GetAtt A.B, !Sub s, !If [c, a, b], !Not [c], !Equals [a, b],
// !FindInMap [m, k1, k2]) or the long forms ({Ref: X}, {"Fn::GetAtt": [A, B]}, …).
type Value struct {
	Kind Kind
	// Text is a scalar's text.
	Text string
	// Fn names an intrinsic without "Fn::": Ref, GetAtt, Sub, If, Not, Equals, FindInMap,
	// And, Or, Condition.
	Fn string
	// Items are a list's items or an intrinsic's arguments; !GetAtt A.B has two, A and B.
	Items []Value
	// Fields are a mapping's entries.
	Fields map[string]Value

	line int
}

// intrinsics are the functions Value decodes; any other short tag is an error.
var intrinsics = map[string]bool{
	"Ref": true, "GetAtt": true, "Sub": true, "If": true, "Not": true, "Equals": true,
	"FindInMap": true, "And": true, "Or": true, "Condition": true, "Join": true, "Select": true,
	"Base64": true, "GetAZs": true, "Split": true, "ImportValue": true,
}

// UnmarshalYAML decodes a YAML node, turning CloudFormation's short tags and long forms into
// Func values. An unknown short tag is an error.
func (v *Value) UnmarshalYAML(n *yaml.Node) error {
	out, err := toValue(n, 0)
	if err != nil {
		return err
	}
	*v = out
	return nil
}

func typeErr(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}

func toValue(n *yaml.Node, depth int) (Value, error) {
	if depth > 64 {
		return Value{}, typeErr(n, "nested deeper than 64 levels")
	}
	if n.Kind == yaml.AliasNode {
		return toValue(n.Alias, depth+1)
	}
	v := Value{line: n.Line}
	switch n.Kind {
	case yaml.ScalarNode:
		v.Kind, v.Text = Scalar, n.Value
		if n.Tag == "!!null" {
			v.Kind = Null
		}
	case yaml.SequenceNode:
		v.Kind = List
		for _, c := range n.Content {
			cv, err := toValue(c, depth+1)
			if err != nil {
				return Value{}, err
			}
			v.Items = append(v.Items, cv)
		}
	case yaml.MappingNode:
		v.Kind, v.Fields = Map, map[string]Value{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if _, dup := v.Fields[k.Value]; dup {
				return Value{}, typeErr(k, "mapping key %q already defined", k.Value)
			}
			cv, err := toValue(n.Content[i+1], depth+1)
			if err != nil {
				return Value{}, err
			}
			v.Fields[k.Value] = cv
		}
		if len(n.Content) == 2 {
			k := n.Content[0].Value
			if fn, ok := strings.CutPrefix(k, "Fn::"); ok || k == "Ref" || k == "Condition" {
				if !ok {
					fn = k
				}
				return intrinsic(n, fn, v.Fields[k])
			}
		}
	default:
		return Value{}, typeErr(n, "unexpected YAML node")
	}
	if tag, ok := strings.CutPrefix(n.Tag, "!"); ok && !strings.HasPrefix(tag, "!") {
		if v.Kind == Null {
			v.Kind = Scalar // the empty argument of a short tag, e.g. !GetAZs ''
		}
		return intrinsic(n, tag, v)
	}
	return v, nil
}

// intrinsic builds the call fn(arg): a list argument is the argument list, anything else
// the only argument; "A.B" of GetAtt becomes [A, B].
func intrinsic(n *yaml.Node, fn string, arg Value) (Value, error) {
	if !intrinsics[fn] {
		return Value{}, typeErr(n, "unsupported intrinsic function %s", fn)
	}
	call := Value{Kind: Func, Fn: fn, line: n.Line}
	if arg.Kind == List {
		call.Items = arg.Items
	} else {
		call.Items = []Value{arg}
	}
	if fn == "GetAtt" && arg.Kind == Scalar {
		res, attr, ok := strings.Cut(arg.Text, ".")
		if !ok {
			return Value{}, typeErr(n, "!GetAtt %q: want Resource.Attribute", arg.Text)
		}
		call.Items = []Value{{Kind: Scalar, Text: res, line: n.Line}, {Kind: Scalar, Text: attr, line: n.Line}}
	}
	want := map[string]int{"Ref": 1, "GetAtt": 2, "If": 3, "Not": 1, "Equals": 2, "FindInMap": 3, "Condition": 1}
	if w, ok := want[fn]; ok && len(call.Items) != w {
		return Value{}, typeErr(n, "%s takes %d arguments, got %d", fn, w, len(call.Items))
	}
	return call, nil
}

// RefTarget returns X for !Ref X.
func (v Value) RefTarget() (string, bool) {
	if v.Kind != Func || v.Fn != "Ref" || v.Items[0].Kind != Scalar {
		return "", false
	}
	return v.Items[0].Text, true
}

// GetAttTarget returns ("A", "B") for !GetAtt A.B.
func (v Value) GetAttTarget() (resource, attribute string, ok bool) {
	if v.Kind != Func || v.Fn != "GetAtt" || v.Items[0].Kind != Scalar || v.Items[1].Kind != Scalar {
		return "", "", false
	}
	return v.Items[0].Text, v.Items[1].Text, true
}

// String names a value's shape for error messages without echoing long content.
func (v Value) String() string {
	switch v.Kind {
	case Null:
		return "null"
	case Scalar:
		if len(v.Text) > 40 {
			return fmt.Sprintf("%q…", v.Text[:40])
		}
		return fmt.Sprintf("%q", v.Text)
	case List:
		return "a list"
	case Map:
		return "a mapping"
	}
	if a, b, ok := v.GetAttTarget(); ok {
		return "!GetAtt " + a + "." + b
	}
	if x, ok := v.RefTarget(); ok {
		return "!Ref " + x
	}
	return "!" + v.Fn
}

// ErrNoValue reports a !Ref of a parameter that has no default: its value comes only from
// a deployment.
var ErrNoValue = errors.New("infra: parameter without a default")

// Scope resolves values the way CloudFormation would for one deployment.
type Scope struct {
	// Ref returns the value of !Ref name and of !GetAtt name (as "Resource.Attribute") for
	// resources and pseudo parameters; false when it does not know name.
	Ref func(name string) (string, bool)
	// Parameters supply their defaults to !Ref of a parameter Ref does not know.
	Parameters map[string]Parameter
	// Conditions and Mappings are the template's.
	Conditions map[string]Value
	Mappings   map[string]map[string]map[string]Value
}

// Resolve evaluates v to a string: scalars as written, !Ref, !GetAtt, !Sub, !If, !Not,
// !Equals, !And, !Or and !FindInMap. A !Ref of a parameter without a default wraps
// ErrNoValue; anything else it cannot evaluate is an error.
func (s Scope) Resolve(v Value) (string, error) {
	return s.resolve(v, 0)
}

func (s Scope) resolve(v Value, depth int) (string, error) {
	if depth > 32 {
		return "", errors.New("intrinsics nested too deep (a condition refers to itself?)")
	}
	switch v.Kind {
	case Scalar:
		return v.Text, nil
	case Func:
	default:
		return "", fmt.Errorf("want a string, got %s", v)
	}
	args := make([]string, 0, len(v.Items))
	resolveArgs := func() error {
		for _, a := range v.Items {
			s, err := s.resolve(a, depth+1)
			if err != nil {
				return err
			}
			args = append(args, s)
		}
		return nil
	}
	switch v.Fn {
	case "Ref":
		if err := resolveArgs(); err != nil {
			return "", err
		}
		return s.ref(args[0])
	case "GetAtt":
		if err := resolveArgs(); err != nil {
			return "", err
		}
		if val, ok := s.lookup(args[0] + "." + args[1]); ok {
			return val, nil
		}
		return "", fmt.Errorf("!GetAtt %s.%s: not known here", args[0], args[1])
	case "Sub":
		return s.sub(v, depth)
	case "If":
		cond, err := s.condition(v.Items[0], depth+1)
		if err != nil {
			return "", err
		}
		if cond {
			return s.resolve(v.Items[1], depth+1)
		}
		return s.resolve(v.Items[2], depth+1)
	case "Not", "Equals", "And", "Or", "Condition":
		b, err := s.condition(v, depth)
		return strconv.FormatBool(b), err
	case "FindInMap":
		if err := resolveArgs(); err != nil {
			return "", err
		}
		val, ok := s.Mappings[args[0]][args[1]][args[2]]
		if !ok {
			return "", fmt.Errorf("!FindInMap [%s, %s, %s]: no such entry", args[0], args[1], args[2])
		}
		return s.resolve(val, depth+1)
	}
	return "", fmt.Errorf("!%s is not supported by internal/infra", v.Fn)
}

func (s Scope) lookup(name string) (string, bool) {
	if s.Ref == nil {
		return "", false
	}
	return s.Ref(name)
}

func (s Scope) ref(name string) (string, error) {
	if val, ok := s.lookup(name); ok {
		return val, nil
	}
	p, ok := s.Parameters[name]
	switch {
	case !ok:
		return "", fmt.Errorf("!Ref %s: not a parameter or a resource known here", name)
	case p.Default == nil:
		return "", fmt.Errorf("!Ref %s: %w", name, ErrNoValue)
	}
	return *p.Default, nil
}

// sub expands ${Name}, ${Resource.Attribute} and ${!Literal} in !Sub's string, from its
// variable map first.
func (s Scope) sub(v Value, depth int) (string, error) {
	str, vars := v.Items[0], map[string]Value{}
	if len(v.Items) == 2 && v.Items[1].Kind == Map {
		vars = v.Items[1].Fields
	} else if len(v.Items) != 1 {
		return "", errors.New("!Sub: want a string or [string, {variables}]")
	}
	if str.Kind != Scalar {
		return "", fmt.Errorf("!Sub: want a string, got %s", str)
	}
	var out strings.Builder
	rest := str.Text
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			out.WriteString(rest)
			return out.String(), nil
		}
		out.WriteString(rest[:i])
		j := strings.Index(rest[i:], "}")
		if j < 0 {
			return "", fmt.Errorf("!Sub: unclosed ${ in %q", str.Text)
		}
		name := rest[i+2 : i+j]
		rest = rest[i+j+1:]
		if lit, ok := strings.CutPrefix(name, "!"); ok {
			out.WriteString("${" + lit + "}")
			continue
		}
		var val string
		var err error
		if vv, ok := vars[name]; ok {
			val, err = s.resolve(vv, depth+1)
		} else if res, attr, ok := strings.Cut(name, "."); ok {
			val, err = s.resolve(Value{Kind: Func, Fn: "GetAtt", Items: []Value{{Kind: Scalar, Text: res}, {Kind: Scalar, Text: attr}}}, depth+1)
		} else {
			val, err = s.ref(name)
		}
		if err != nil {
			return "", fmt.Errorf("!Sub: %w", err)
		}
		out.WriteString(val)
	}
}

// condition evaluates a condition: !Equals, !Not, !And, !Or, or the name of one of the
// template's Conditions (written {Condition: Name} or as a plain name inside !If).
func (s Scope) condition(v Value, depth int) (bool, error) {
	if depth > 32 {
		return false, errors.New("conditions nested too deep (a condition refers to itself?)")
	}
	if v.Kind == Scalar || (v.Kind == Func && v.Fn == "Condition") {
		name := v.Text
		if v.Kind == Func {
			name = v.Items[0].Text
		}
		c, ok := s.Conditions[name]
		if !ok {
			return false, fmt.Errorf("condition %s is not defined", name)
		}
		return s.condition(c, depth+1)
	}
	if v.Kind != Func {
		return false, fmt.Errorf("want a condition, got %s", v)
	}
	switch v.Fn {
	case "Equals":
		a, err := s.resolve(v.Items[0], depth+1)
		if err != nil {
			return false, err
		}
		b, err := s.resolve(v.Items[1], depth+1)
		return a == b, err
	case "Not":
		b, err := s.condition(v.Items[0], depth+1)
		return !b, err
	case "And", "Or":
		and := v.Fn == "And"
		for _, c := range v.Items {
			b, err := s.condition(c, depth+1)
			if err != nil {
				return false, err
			}
			if b != and {
				return b, nil
			}
		}
		return and, nil
	}
	return false, fmt.Errorf("want a condition, got %s", v)
}
