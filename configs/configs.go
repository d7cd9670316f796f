// Package configs embeds the annotated sample configuration so the binary
// can print it (`scanagent config sample`) and tests can prove it valid.
package configs

import _ "embed"

// Sample is scanagent.toml.
//
//go:embed scanagent.toml
var Sample []byte
