package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Load returns the configuration built in three layers: the embedded
// defaults (default.yaml, equal to Default()), the YAML file at path merged
// over them (path "" reads no file), and the SBC_ overrides found in environ
// ("NAME=value" entries, as from os.Environ; see EnvPrefix and EnvName).
//
// Mappings merge key by key; a list in the file or the environment replaces
// the default list as a whole. Within a list, items get their own defaults:
// a listener's name is its transport and its symmetric DefaultSymmetric; a
// trunk's options_interval, options_timeout and failure_threshold are
// DefaultOptionsInterval, DefaultOptionsTimeout and DefaultFailureThreshold;
// a cdr writer's type is DefaultCDRType and its name its type; a file
// writer's dir, max_bytes and rotate_every are DefaultCDRDir,
// DefaultCDRMaxBytes and DefaultCDRRotateEvery.
//
// The file and environment problems (unknown keys, values of the wrong type
// or shape, durations without a unit) are all returned together as
// Problems; an unreadable or unparsable file is a plain error. The result is
// not validated: call Validate.
func Load(path string, environ []string) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(defaultYAML)); err != nil {
		return nil, fmt.Errorf("read embedded defaults: %w", err)
	}
	var ps Problems
	if path != "" {
		file, err := readYAMLFile(path)
		if err != nil {
			return nil, err
		}
		// Check before merging: viper drops a scalar given where a section
		// belongs without a word.
		checkTree(file, reflect.TypeFor[Config](), "", &ps)
		if err := v.MergeConfigMap(file); err != nil {
			return nil, fmt.Errorf("merge %s: %w", path, err)
		}
	}
	overrides := envOverrides(environ, &ps)
	for _, o := range overrides {
		v.Set(o.path, o.value)
	}
	settings := v.AllSettings()
	fillItemDefaults(settings)
	cfg := new(Config)
	if err := decode(settings, cfg); err != nil {
		var decodeProblems Problems
		collectDecodeProblems(err, settings, &decodeProblems)
		annotateEnv(decodeProblems, overrides)
		ps = append(ps, decodeProblems...)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// readYAMLFile reads a config file into a tree of map[string]any.
func readYAMLFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	switch doc := normalize(doc).(type) {
	case nil:
		return map[string]any{}, nil // an empty file: the defaults
	case map[string]any:
		return doc, nil
	default:
		return nil, fmt.Errorf("parse config %s: want a mapping of keys at the top level", path)
	}
}

// fillItemDefaults sets the per-item defaults inside lists, which viper's
// layering cannot express, on keys the item leaves out.
func fillItemDefaults(settings map[string]any) {
	sip, _ := settings["sip"].(map[string]any)
	for _, l := range items(sip, "listeners") {
		if name, _ := l["name"].(string); name == "" {
			if tr, ok := l["transport"].(string); ok {
				l["name"] = tr
			}
		}
		setMissing(l, "symmetric", DefaultSymmetric)
	}
	for _, t := range items(settings, "trunks") {
		setMissing(t, "options_interval", DefaultOptionsInterval)
		setMissing(t, "options_timeout", DefaultOptionsTimeout)
		setMissing(t, "failure_threshold", DefaultFailureThreshold)
		setMissing(t, "media", DefaultTrunkMedia)
		setMissing(t, "dtmf", DefaultTrunkDTMF)
	}
	for _, w := range items(settings, "cdr") {
		setMissing(w, "type", DefaultCDRType)
		typ, _ := w["type"].(string)
		if typ != "" {
			setMissing(w, "name", typ)
		}
		if typ == CDRJSONL || typ == CDRCSV {
			setMissing(w, "dir", DefaultCDRDir)
			setMissing(w, "max_bytes", DefaultCDRMaxBytes)
			setMissing(w, "rotate_every", DefaultCDRRotateEvery)
		}
	}
}

// items returns the mappings in the list at m[key]; other elements are
// skipped (checkTree has reported them).
func items(m map[string]any, key string) []map[string]any {
	list, _ := m[key].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, e := range list {
		if item, ok := e.(map[string]any); ok {
			out = append(out, item)
		}
	}
	return out
}

func setMissing(m map[string]any, key string, value any) {
	if _, ok := m[key]; !ok {
		m[key] = value
	}
}

// decode fills cfg from the settings tree. Input is weakly typed so that
// environment text becomes numbers and booleans; unused keys are errors.
func decode(settings map[string]any, cfg *Config) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       durationHook,
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		Result:           cfg,
	})
	if err != nil {
		return fmt.Errorf("build decoder: %w", err)
	}
	return dec.Decode(settings)
}

// durationHook decodes durations from text such as "30s" or "1h30m". A bare
// number other than 0 is refused: the decoder would read 60 as 60ns.
func durationHook(_, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	switch d := data.(type) {
	case time.Duration:
		return d, nil
	case string:
		v, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, errors.New("want a duration with a unit, such as 500ms, 30s or 5m")
		}
		return v, nil
	case int:
		if d == 0 {
			return time.Duration(0), nil
		}
	}
	return nil, errors.New("want a duration with a unit, such as 500ms, 30s or 5m")
}

// collectDecodeProblems turns the decoder's (joined, nested) errors into
// problems keyed by the decoder's field names, which use the same
// key[index].key form as Problem.Key.
func collectDecodeProblems(err error, settings map[string]any, ps *Problems) {
	if de, ok := err.(*mapstructure.DecodeError); ok {
		ps.add(de.Name(), valueText(lookup(settings, de.Name())), decodeReason(de.Unwrap()))
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			collectDecodeProblems(e, settings, ps)
		}
		return
	}
	if inner := errors.Unwrap(err); inner != nil {
		collectDecodeProblems(inner, settings, ps)
		return
	}
	ps.add("", "", err.Error())
}

// decodeReason words a decoder error for an operator.
func decodeReason(err error) string {
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return "want " + typeWord(pe.Expected.Type())
	}
	var ue *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ue) {
		return "want " + typeWord(ue.Expected.Type())
	}
	return err.Error()
}

func typeWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a mapping of keys"
	default:
		return t.String()
	}
}
