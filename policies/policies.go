// Package policies embeds the default policy, so a server started away
// from a policy directory still judges code by it.
package policies

import _ "embed"

// Default is policies/default.yaml.
//
//go:embed default.yaml
var Default []byte
