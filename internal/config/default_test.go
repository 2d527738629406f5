package config

import (
	"bytes"
	"os"
	"reflect"
	"testing"
)

func TestDefaultMatchesEmbeddedYAML(t *testing.T) {
	got, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(\"\") = %+v\nDefault() = %+v", got, want)
	}
}

func TestDefaultEqualsConfigsDefaultFile(t *testing.T) {
	got, err := Load("../../configs/default.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(configs/default.yaml) = %+v\nDefault() = %+v", got, want)
	}
}

func TestConfigsDefaultIsEmbeddedCopy(t *testing.T) {
	file, err := os.ReadFile("../../configs/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, defaultYAML) {
		t.Error("configs/default.yaml differs from internal/config/default.yaml; run `go generate ./internal/config`")
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate():\n%v", err)
	}
}

func TestDefaultReturnsFreshValue(t *testing.T) {
	a := Default()
	a.SIP.Listeners[0].Addr = "changed"
	a.Routes[0].Name = "changed"
	if b := Default(); b.SIP.Listeners[0].Addr == "changed" || b.Routes[0].Name == "changed" {
		t.Error("Default() shares slices between calls")
	}
}
