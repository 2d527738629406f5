package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment override. The rest of the name is the
// key path in upper case with "." written as "_": SBC_SIP_PUBLIC_ADDR
// overrides sip.public_addr.
const EnvPrefix = "SBC_"

// envKey is a key that an environment variable can override.
type envKey struct {
	path string
	typ  reflect.Type
}

// override is one environment value ready for viper.Set.
type override struct {
	path  string
	value any
	name  string // the environment variable, for problems
}

// EnvName returns the environment variable that overrides key, e.g.
// EnvName("media.rtp_ports") is "SBC_MEDIA_RTP_PORTS".
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envKeys maps every environment variable name to the key it overrides:
// every key that is not inside a list. Sections (sip, sip.tls, ...) are not
// overridable as a whole, only their keys; lists (sip.listeners, trunks,
// routes, cdr, ...) are overridden as a whole.
func envKeys() map[string]envKey {
	out := make(map[string]envKey)
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for k, ft := range fieldTypes(t) {
			path := joinKey(prefix, k)
			if shapeOf(ft) == shapeMapping {
				walk(ft, path)
				continue
			}
			name := EnvName(path)
			if prev, dup := out[name]; dup {
				// A programming error in the Config tags; every test trips it.
				panic("config: keys " + prev.path + " and " + path + " share the variable " + name)
			}
			out[name] = envKey{path: path, typ: ft}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// envOverrides turns the SBC_ entries of environ ("NAME=value") into
// overrides, in environ order so that a later duplicate wins. Scalars are
// passed as text (the decoder converts numbers, booleans and durations);
// lists of mappings are parsed as YAML or JSON text; lists of strings as
// YAML/JSON text when they start with "[", else as comma-separated items.
// An SBC_ variable that names no key is a problem, like an unknown key in a
// file.
func envOverrides(environ []string, ps *Problems) []override {
	keys := envKeys()
	var out []override
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		k, ok := keys[name]
		if !ok {
			ps.add(name, value, "environment variable names no config key")
			continue
		}
		var envProblems Problems
		v, ok := envValue(k, value, &envProblems)
		for _, p := range envProblems {
			p.Reason += " (from " + name + ")"
			*ps = append(*ps, p)
		}
		if ok {
			out = append(out, override{path: k.path, value: v, name: name})
		}
	}
	return out
}

// envValue parses one environment value for key k.
func envValue(k envKey, value string, ps *Problems) (any, bool) {
	switch shapeOf(k.typ) {
	case shapeList:
		v, err := parseYAMLList(value)
		if err != nil {
			ps.add(k.path, value, err.Error())
			return nil, false
		}
		return v, checkList(v, k.typ.Elem(), k.path, ps)
	case shapeStrings:
		if strings.HasPrefix(strings.TrimSpace(value), "[") {
			v, err := parseYAMLList(value)
			if err != nil {
				ps.add(k.path, value, err.Error())
				return nil, false
			}
			return v, true
		}
		items := []any{}
		for item := range strings.SplitSeq(value, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		return items, true
	default:
		return value, true
	}
}

// parseYAMLList parses YAML (or JSON) text holding a list; empty text is an
// empty list.
func parseYAMLList(text string) ([]any, error) {
	var v any
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		return nil, fmt.Errorf("parse as a YAML or JSON list: %w", err)
	}
	switch v := normalize(v).(type) {
	case nil:
		return []any{}, nil
	case []any:
		return v, nil
	default:
		return nil, errors.New("want a YAML or JSON list such as [{...}, {...}]")
	}
}

// annotateEnv adds "(from SBC_...)" to the reasons of problems about keys
// whose value came from the environment, which the config file may not
// even mention.
func annotateEnv(ps Problems, overrides []override) {
	for i := range ps {
		for _, o := range overrides {
			k := ps[i].Key
			if k == o.path || strings.HasPrefix(k, o.path+".") || strings.HasPrefix(k, o.path+"[") {
				ps[i].Reason += " (from " + o.name + ")"
				break
			}
		}
	}
}
