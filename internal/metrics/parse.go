package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Point is one metric value read back from an EMF line.
type Point struct {
	Namespace string
	Name      string
	Unit      Unit
	Value     float64
	// Dims are the line's dimension values by name (Function, Outcome, …).
	Dims map[string]string
	// Sets are the dimension sets the value is published under.
	Sets [][]string
	// Timestamp is the line's _aws.Timestamp (Unix milliseconds).
	Timestamp int64
}

// Parse reads a log stream (EMF lines mixed with other JSON or text lines, as a function's
// standard output is) and returns the metric values of its EMF lines, in order. A line with an
// "_aws" member that breaks the EMF specification's rules CloudWatch enforces is an error:
// a timestamp, a namespace, at most 30 dimensions per set each present as a string member,
// at most 100 metrics, each present as a number member.
func Parse(r io.Reader) ([]Point, error) {
	var out []Point
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if !bytes.Contains(line, []byte(`"_aws"`)) {
			continue
		}
		pts, err := parseLine(line)
		if err != nil {
			return out, fmt.Errorf("metrics: line %d: %w", n, err)
		}
		out = append(out, pts...)
	}
	return out, sc.Err()
}

func parseLine(line []byte) ([]Point, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	var meta awsMeta
	if err := json.Unmarshal(raw["_aws"], &meta); err != nil {
		return nil, fmt.Errorf("_aws: %w", err)
	}
	if meta.Timestamp <= 0 {
		return nil, fmt.Errorf("_aws.Timestamp missing")
	}
	if len(meta.CloudWatchMetrics) == 0 {
		return nil, fmt.Errorf("_aws.CloudWatchMetrics empty")
	}
	var out []Point
	for _, d := range meta.CloudWatchMetrics {
		if d.Namespace == "" {
			return nil, fmt.Errorf("directive without Namespace")
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > 100 {
			return nil, fmt.Errorf("directive with %d metrics, want 1 to 100", len(d.Metrics))
		}
		dims := map[string]string{}
		for _, set := range d.Dimensions {
			if len(set) > 30 {
				return nil, fmt.Errorf("dimension set of %d, want at most 30", len(set))
			}
			for _, k := range set {
				var v string
				if err := json.Unmarshal(raw[k], &v); err != nil || v == "" {
					return nil, fmt.Errorf("dimension %q is not a non-empty string member", k)
				}
				dims[k] = v
			}
		}
		for _, m := range d.Metrics {
			var v float64
			if err := json.Unmarshal(raw[m.Name], &v); err != nil {
				return nil, fmt.Errorf("metric %q is not a number member", m.Name)
			}
			out = append(out, Point{Namespace: d.Namespace, Name: m.Name, Unit: m.Unit, Value: v,
				Dims: dims, Sets: d.Dimensions, Timestamp: meta.Timestamp})
		}
	}
	return out, nil
}

// Sum adds the values of the points named name whose dimensions include every one of dims.
func Sum(points []Point, name string, dims ...Dim) float64 {
	var total float64
next:
	for _, p := range points {
		if p.Name != name {
			continue
		}
		for _, d := range dims {
			if p.Dims[d.Name] != d.Value {
				continue next
			}
		}
		total += p.Value
	}
	return total
}
