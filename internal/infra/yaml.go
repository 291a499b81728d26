package infra

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// TemplateError reports a piece of the template that infra cannot turn into an AWS input:
// missing, of the wrong shape, or not understood. Path locates it, for example
// "Resources.TokensTable.Properties.GlobalSecondaryIndexes[0].Projection".
type TemplateError struct {
	Path   string
	Reason string
}

// Error reads "template: <path>: <reason>".
func (e *TemplateError) Error() string {
	return "template: " + e.Path + ": " + e.Reason
}

func errAt(path, format string, args ...any) error {
	return &TemplateError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// intrinsic is a CloudFormation function call, written either as a short tag (!Ref X,
// !GetAtt A.B) or as a one-key mapping ({Ref: X}, {"Fn::GetAtt": [A, B]}). Fn is the bare name
// ("Ref", "GetAtt", "Sub", …); Arg is the converted argument.
type intrinsic struct {
	Fn  string
	Arg any
}

// scalar is a plain YAML scalar with the tag yaml resolved (!!str, !!int, !!bool, …).
type scalar struct {
	Value string
	Tag   string
}

// mapping keeps YAML key order so that errors name the first offending key deterministically.
type mapping struct {
	Keys   []string
	Values map[string]any
}

// decodeYAML converts a YAML document into mapping, []any, scalar and intrinsic values,
// keeping CloudFormation's short tags as opaque intrinsics instead of failing on them.
func decodeYAML(data []byte) (any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errAt("(root)", "empty document")
		}
		return nil, &TemplateError{Path: "(root)", Reason: "invalid YAML: " + err.Error()}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errAt("(root)", "more than one YAML document")
	}
	return convert(&doc, "(root)", 0)
}

const maxDepth = 64

func convert(n *yaml.Node, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errAt(path, "nested deeper than %d levels", maxDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, errAt(path, "empty document")
		}
		return convert(n.Content[0], path, depth+1)
	case yaml.AliasNode:
		return convert(n.Alias, path, depth+1)
	}

	var v any
	switch n.Kind {
	case yaml.ScalarNode:
		tag := n.Tag
		if isShortTag(tag) {
			tag = "!!str" // the scalar argument of a short tag, e.g. the "X" of !Ref X
		}
		v = scalar{Value: n.Value, Tag: tag}
	case yaml.SequenceNode:
		seq := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			cv, err := convert(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			seq = append(seq, cv)
		}
		v = seq
	case yaml.MappingNode:
		m := mapping{Values: make(map[string]any, len(n.Content)/2)}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, errAt(path, "non-scalar mapping key on line %d", k.Line)
			}
			if k.Value == "<<" {
				return nil, errAt(path, "YAML merge keys are not supported (line %d)", k.Line)
			}
			if _, dup := m.Values[k.Value]; dup {
				return nil, errAt(join(path, k.Value), "duplicate key on line %d", k.Line)
			}
			cv, err := convert(n.Content[i+1], join(path, k.Value), depth+1)
			if err != nil {
				return nil, err
			}
			m.Keys = append(m.Keys, k.Value)
			m.Values[k.Value] = cv
		}
		v = longFormIntrinsic(m)
	default:
		return nil, errAt(path, "unexpected YAML node kind %d", n.Kind)
	}

	if isShortTag(n.Tag) {
		return normalizeIntrinsic(intrinsic{Fn: strings.TrimPrefix(n.Tag, "!"), Arg: v}), nil
	}
	return v, nil
}

// isShortTag reports whether tag is a CloudFormation short form such as !Ref (YAML's own
// tags start with "!!").
func isShortTag(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

// longFormIntrinsic turns {Ref: X} and {"Fn::Name": …} into an intrinsic.
func longFormIntrinsic(m mapping) any {
	if len(m.Keys) != 1 {
		return m
	}
	k := m.Keys[0]
	switch {
	case k == "Ref" || k == "Condition":
		return normalizeIntrinsic(intrinsic{Fn: k, Arg: m.Values[k]})
	case strings.HasPrefix(k, "Fn::"):
		return normalizeIntrinsic(intrinsic{Fn: strings.TrimPrefix(k, "Fn::"), Arg: m.Values[k]})
	}
	return m
}

// normalizeIntrinsic writes GetAtt's list form [Resource, Attribute] as "Resource.Attribute",
// the short form's spelling, so callers handle one shape.
func normalizeIntrinsic(in intrinsic) intrinsic {
	if in.Fn != "GetAtt" {
		return in
	}
	if seq, ok := in.Arg.([]any); ok && len(seq) == 2 {
		a, aok := seq[0].(scalar)
		b, bok := seq[1].(scalar)
		if aok && bok {
			in.Arg = scalar{Value: a.Value + "." + b.Value, Tag: "!!str"}
		}
	}
	return in
}

func join(path, key string) string {
	if path == "(root)" {
		return key
	}
	return path + "." + key
}

// object reads the keys of one mapping and remembers which were read, so that finish can
// reject any key nobody understood.
type object struct {
	path string
	m    mapping
	seen map[string]bool
}

func asObject(v any, path string) (*object, error) {
	m, ok := v.(mapping)
	if !ok {
		return nil, errAt(path, "want a mapping, got %s", describe(v))
	}
	return &object{path: path, m: m, seen: make(map[string]bool, len(m.Keys))}, nil
}

func (o *object) at(key string) string { return join(o.path, key) }

// get returns the value under key, marking it read.
func (o *object) get(key string) (any, bool) {
	v, ok := o.m.Values[key]
	if ok {
		o.seen[key] = true
	}
	return v, ok
}

// ignore marks keys as deliberately not used.
func (o *object) ignore(keys ...string) {
	for _, k := range keys {
		o.seen[k] = true
	}
}

func (o *object) require(key string) (any, error) {
	v, ok := o.get(key)
	if !ok {
		return nil, errAt(o.path, "missing %s", key)
	}
	return v, nil
}

func (o *object) object(key string) (*object, error) {
	v, err := o.require(key)
	if err != nil {
		return nil, err
	}
	return asObject(v, o.at(key))
}

func (o *object) list(key string) ([]any, error) {
	v, err := o.require(key)
	if err != nil {
		return nil, err
	}
	seq, ok := v.([]any)
	if !ok {
		return nil, errAt(o.at(key), "want a list, got %s", describe(v))
	}
	if len(seq) == 0 {
		return nil, errAt(o.at(key), "empty list")
	}
	return seq, nil
}

func (o *object) str(key string) (string, error) {
	v, err := o.require(key)
	if err != nil {
		return "", err
	}
	return asString(v, o.at(key))
}

func (o *object) integer(key string) (int, error) {
	v, err := o.require(key)
	if err != nil {
		return 0, err
	}
	return asInt(v, o.at(key))
}

func (o *object) boolean(key string) (bool, error) {
	v, err := o.require(key)
	if err != nil {
		return false, err
	}
	return asBool(v, o.at(key))
}

// finish fails on the first key that was neither read nor ignored: a property infra does
// not apply must be a loud error, never a silently different resource.
func (o *object) finish() error {
	for _, k := range o.m.Keys {
		if !o.seen[k] {
			return errAt(o.at(k), "not supported by internal/infra (teach it, or remove it from the template)")
		}
	}
	return nil
}

func asString(v any, path string) (string, error) {
	s, ok := v.(scalar)
	if !ok || s.Tag == "!!null" {
		return "", errAt(path, "want a string, got %s", describe(v))
	}
	return s.Value, nil
}

// asInt accepts numbers written plain or quoted, as CloudFormation does.
func asInt(v any, path string) (int, error) {
	s, ok := v.(scalar)
	if !ok {
		return 0, errAt(path, "want an integer, got %s", describe(v))
	}
	n, err := strconv.Atoi(s.Value)
	if err != nil {
		return 0, errAt(path, "want an integer, got %q", s.Value)
	}
	return n, nil
}

// asBool accepts true/false written plain or quoted, as CloudFormation does.
func asBool(v any, path string) (bool, error) {
	s, ok := v.(scalar)
	if ok {
		switch strings.ToLower(s.Value) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, errAt(path, "want true or false, got %s", describe(v))
}

// describe names a value's shape for error messages without echoing long content.
func describe(v any) string {
	switch x := v.(type) {
	case scalar:
		if x.Tag == "!!null" {
			return "null"
		}
		if len(x.Value) > 40 {
			return fmt.Sprintf("%q…", x.Value[:40])
		}
		return fmt.Sprintf("%q", x.Value)
	case []any:
		return "a list"
	case mapping:
		return "a mapping"
	case intrinsic:
		return "!" + x.Fn
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

// refTarget returns X for !Ref X.
func refTarget(v any) (string, bool) {
	in, ok := v.(intrinsic)
	if !ok || in.Fn != "Ref" {
		return "", false
	}
	s, ok := in.Arg.(scalar)
	return s.Value, ok
}

// getAttTarget returns ("A", "B") for !GetAtt A.B.
func getAttTarget(v any) (resource, attribute string, ok bool) {
	in, isIn := v.(intrinsic)
	if !isIn || in.Fn != "GetAtt" {
		return "", "", false
	}
	s, isScalar := in.Arg.(scalar)
	if !isScalar {
		return "", "", false
	}
	resource, attribute, ok = strings.Cut(s.Value, ".")
	return resource, attribute, ok
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
