// Package flagconfig sets the flags of a flag.FlagSet from three sources
// besides the command line: environment variables (PREFIX_FLAG_NAME) and a
// YAML file whose keys are the flag names. It works over whatever flags the
// set has, so a flag added to a command is settable everywhere at once.
//
// Precedence: command line > environment > file > the flag's default.
package flagconfig

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Loader says how a command's flags are looked up.
type Loader struct {
	// EnvPrefix prefixes the environment variable of each flag:
	// "MQIM_" makes --mqtt-addr MQIM_MQTT_ADDR.
	EnvPrefix string
	// FileFlag names the flag that holds the config file's path (its own
	// environment variable works too); it cannot be set in the file.
	FileFlag string
	// CommandLineOnly are flags that make sense only on the command line
	// (--version): a file that sets one is refused, the environment ignored.
	CommandLineOnly []string
}

// EnvName is the environment variable of the flag name.
func (l Loader) EnvName(name string) string {
	return l.EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args into fs, then fills every flag the command line left
// unset from its environment variable or, failing that, from the config
// file. Errors name the source and the flag; flag.ErrHelp is returned as
// is.
func (l Loader) Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	// The file's own path follows the same precedence: flag, then env.
	var file map[string]value
	path := ""
	if l.FileFlag != "" {
		if f := fs.Lookup(l.FileFlag); f != nil {
			path = f.Value.String()
			if v, ok := os.LookupEnv(l.EnvName(l.FileFlag)); ok && !onCommandLine[l.FileFlag] {
				path = v
			}
		}
	}
	if path != "" {
		var err error
		if file, err = l.readFile(fs, path); err != nil {
			return err
		}
	}

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if onCommandLine[f.Name] || slices.Contains(l.CommandLineOnly, f.Name) {
			return
		}
		if v, ok := os.LookupEnv(l.EnvName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", l.EnvName(f.Name), v, err))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := f.Value.Set(v.text); err != nil {
				errs = append(errs, fmt.Errorf("config file %s, line %d: %s: invalid value %q: %w", path, v.line, f.Name, v.text, err))
			}
		}
	})
	return errors.Join(errs...)
}

// value is one setting of the file, as the flag's Set takes it.
type value struct {
	text string
	line int
}

// readFile reads a YAML mapping of flag names to values. A scalar is the
// flag's text (durations as "30s"); a sequence of scalars is joined with
// commas, the form of the list flags (--nats-routes, --media-types).
func (l Loader) readFile(fs *flag.FlagSet, path string) (map[string]value, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := map[string]value{}
	if doc.Kind == 0 { // empty file
		return out, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s, line %d: want a mapping of flag names to values (mqtt-addr: \":1883\")", path, root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		switch {
		case k.Kind != yaml.ScalarNode:
			return nil, fmt.Errorf("config file %s, line %d: a key must be a flag name", path, k.Line)
		case name == l.FileFlag || slices.Contains(l.CommandLineOnly, name):
			return nil, fmt.Errorf("config file %s, line %d: %q cannot be set in a config file", path, k.Line, name)
		case fs.Lookup(name) == nil:
			return nil, fmt.Errorf("config file %s, line %d: unknown key %q (the keys are the flag names)%s",
				path, k.Line, name, suggest(fs, name))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("config file %s, line %d: %q is set twice", path, k.Line, name)
		}
		text, err := scalarText(v)
		if err != nil {
			return nil, fmt.Errorf("config file %s, line %d: %s: %w", path, v.Line, name, err)
		}
		out[name] = value{text: text, line: v.Line}
	}
	return out, nil
}

func scalarText(v *yaml.Node) (string, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return "", nil
		}
		return v.Value, nil
	case yaml.SequenceNode:
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode {
				return "", errors.New("a list may hold only plain values")
			}
			items = append(items, it.Value)
		}
		return strings.Join(items, ","), nil
	}
	return "", errors.New("want a value or a list of values, not a mapping")
}

// suggest names a flag the mistyped key may have meant.
func suggest(fs *flag.FlagSet, key string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
	best := ""
	fs.VisitAll(func(f *flag.Flag) {
		if best == "" && (norm(key) == f.Name || strings.TrimLeft(key, "-") == f.Name) {
			best = f.Name
		}
	})
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}
