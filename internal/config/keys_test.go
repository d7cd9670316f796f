package config

import (
	"reflect"
	"strings"
	"testing"
)

// tomlKeys lists the dotted TOML keys of Config's leaf fields.
func tomlKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" || tag == "-" {
				continue
			}
			name := strings.Split(tag, ",")[0]
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				keys = append(keys, prefix+name)
				walk("", ft.Elem())
				continue
			}
			if ft.Kind() == reflect.Struct {
				walk(prefix+name+".", ft)
				continue
			}
			keys = append(keys, lastKey(prefix+name))
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return keys
}

// lastKey keeps the key as written inside its table: "platform.urls.x" → "x".
func lastKey(k string) string {
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		return k[i+1:]
	}
	return k
}
