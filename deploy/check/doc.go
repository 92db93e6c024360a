// Package check holds CI checks of Airlock's deployment artefacts: the
// kustomize tree, docker-compose.yaml, the Dockerfile and the collector
// configuration. It is a module of its own so that the Kubernetes, kustomize,
// compose-spec and BuildKit libraries never enter the root module.
package check

// Services are the six Airlock services, each deployed on its own.
var Services = []string{"orchestrator", "generator", "policy", "budget", "executor", "approval"}

// Internal are the services only the orchestrator may call.
var Internal = []string{"generator", "policy", "budget", "executor", "approval"}
