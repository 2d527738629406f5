package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// This file knows the shape of the key tree from the Config struct's
// mapstructure tags, so that unknown keys are reported with their full path
// (viper itself would merge them silently) and environment variable names
// can be mapped back to keys without guessing where "_" splits them.

// shape is what a key holds.
type shape int

const (
	shapeScalar  shape = iota // string, number, bool or duration
	shapeStrings              // list of strings
	shapeMapping              // a nested section
	shapeList                 // list of mappings
)

func shapeOf(t reflect.Type) shape {
	switch {
	case t.Kind() == reflect.Struct:
		return shapeMapping
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return shapeList
	case t.Kind() == reflect.Slice:
		return shapeStrings
	default:
		return shapeScalar
	}
}

// fieldTypes returns the keys of struct type t and their Go types. The
// keys of a struct embedded with the tag ",squash" are t's own, as the
// decoder reads them.
func fieldTypes(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		switch tag := f.Tag.Get("mapstructure"); {
		case tag == ",squash":
			maps.Copy(out, fieldTypes(f.Type))
		case tag != "" && tag != "-":
			out[tag] = f.Type
		}
	}
	return out
}

// checkTree walks the decoded YAML mapping m against struct type t. It
// reports and deletes every key t does not have, and every value whose
// shape cannot fit (a scalar where a section or list belongs), so that what
// remains can be merged and decoded. Scalar values are left to the decoder.
func checkTree(m map[string]any, t reflect.Type, prefix string, ps *Problems) {
	known := fieldTypes(t)
	for _, k := range sortedKeys(m) {
		path := joinKey(prefix, k)
		ft, ok := known[k]
		if !ok {
			ps.add(path, valueText(m[k]), "unknown key")
			delete(m, k)
			continue
		}
		v := m[k]
		if v == nil {
			continue // "key:" with no value; the decoder treats it as unset
		}
		switch shapeOf(ft) {
		case shapeMapping:
			sub, ok := v.(map[string]any)
			if !ok {
				ps.add(path, valueText(v), "want a mapping of keys")
				delete(m, k)
				continue
			}
			checkTree(sub, ft, path, ps)
		case shapeList:
			if !checkList(v, ft.Elem(), path, ps) {
				delete(m, k)
			}
		}
	}
}

// checkList checks a list of mappings of struct type elem; it reports false
// when v is unusable as such a list.
func checkList(v any, elem reflect.Type, path string, ps *Problems) bool {
	list, ok := v.([]any)
	if !ok {
		ps.add(path, valueText(v), "want a list")
		return false
	}
	good := true
	for i, e := range list {
		ipath := path + "[" + strconv.Itoa(i) + "]"
		sub, ok := e.(map[string]any)
		if !ok {
			ps.add(ipath, valueText(e), "want a mapping of keys")
			good = false
			continue
		}
		checkTree(sub, elem, ipath, ps)
	}
	return good
}

// normalize turns the map[any]any a YAML decoder may produce for mappings
// with non-string keys into map[string]any, recursively, in place where it
// can.
func normalize(v any) any {
	switch v := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case map[string]any:
		for k, e := range v {
			v[k] = normalize(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = normalize(e)
		}
		return v
	default:
		return v
	}
}

// lookup returns the value at a decoder field name such as
// sip.listeners[0].addr in the settings tree, or nil.
func lookup(tree map[string]any, key string) any {
	var cur any = tree
	for part := range strings.SplitSeq(key, ".") {
		name, rest, _ := strings.Cut(part, "[")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[name]
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			rest = strings.TrimPrefix(after, "[")
			i, err := strconv.Atoi(idx)
			list, ok := cur.([]any)
			if err != nil || !ok || i < 0 || i >= len(list) {
				return nil
			}
			cur = list[i]
		}
	}
	return cur
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// valueText renders a raw settings value for a Problem.
func valueText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case map[string]any:
		return "(mapping)"
	case []any:
		return "(list)"
	default:
		return fmt.Sprint(v)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // problems come out in a stable order
	return keys
}
