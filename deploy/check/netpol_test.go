package check

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// endpoint is one end of a connection: a pod (in some namespace) or an
// address outside the cluster.
type endpoint struct {
	name     string
	pod      labels.Set // nil outside the cluster
	ns       labels.Set
	external bool
}

func airlockPod(component string) endpoint {
	return endpoint{
		name: component,
		pod:  labels.Set{"app.kubernetes.io/name": "airlock", "app.kubernetes.io/component": component},
		ns:   labels.Set{"kubernetes.io/metadata.name": "airlock"},
	}
}

var (
	outside    = endpoint{name: "outside", external: true}
	monitoring = endpoint{name: "prometheus", pod: labels.Set{"app": "prometheus"}, ns: labels.Set{"kubernetes.io/metadata.name": "monitoring"}}
	kubeDNS    = endpoint{name: "kube-dns", pod: labels.Set{"k8s-app": "kube-dns"}, ns: labels.Set{"kubernetes.io/metadata.name": "kube-system"}}
)

type port struct {
	proto corev1.Protocol
	num   int32
}

// netpolSim evaluates NetworkPolicy semantics for the airlock namespace: a
// connection needs the source's egress and the destination's ingress to
// allow it; a pod no policy of a direction selects is open in it.
type netpolSim struct {
	t   *testing.T
	pol []*networkingv1.NetworkPolicy
}

func (s netpolSim) selects(p *networkingv1.NetworkPolicy, e endpoint, dir networkingv1.PolicyType) bool {
	if e.pod == nil || e.ns["kubernetes.io/metadata.name"] != p.Namespace {
		return false
	}
	hasType := false
	for _, pt := range p.Spec.PolicyTypes {
		hasType = hasType || pt == dir
	}
	return hasType && s.matches(&p.Spec.PodSelector, e.pod)
}

func (s netpolSim) matches(sel *metav1.LabelSelector, set labels.Set) bool {
	ls, err := metav1.LabelSelectorAsSelector(sel)
	require.NoError(s.t, err)
	return ls.Matches(set)
}

// peerMatches reports whether a rule's peer list admits e. An ipBlock is
// taken to admit any address, the pessimistic reading.
func (s netpolSim) peerMatches(policyNS string, peers []networkingv1.NetworkPolicyPeer, e endpoint) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		switch {
		case p.IPBlock != nil:
			return true
		case e.external:
			continue
		case p.NamespaceSelector != nil:
			if !s.matches(p.NamespaceSelector, e.ns) {
				continue
			}
			if p.PodSelector == nil || s.matches(p.PodSelector, e.pod) {
				return true
			}
		case p.PodSelector != nil:
			if e.ns["kubernetes.io/metadata.name"] == policyNS && s.matches(p.PodSelector, e.pod) {
				return true
			}
		}
	}
	return false
}

func portMatches(ports []networkingv1.NetworkPolicyPort, want port) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if proto != want.proto {
			continue
		}
		if p.Port == nil || p.Port.IntValue() == int(want.num) {
			return true
		}
	}
	return false
}

func (s netpolSim) allowed(src, dst endpoint, pt port) bool {
	egressOK, ingressOK := true, true
	if src.pod != nil {
		var selected, ok bool
		for _, p := range s.pol {
			if !s.selects(p, src, networkingv1.PolicyTypeEgress) {
				continue
			}
			selected = true
			for _, r := range p.Spec.Egress {
				ok = ok || s.peerMatches(p.Namespace, r.To, dst) && portMatches(r.Ports, pt)
			}
		}
		egressOK = !selected || ok
	}
	if dst.pod != nil && dst.ns["kubernetes.io/metadata.name"] == "airlock" {
		var selected, ok bool
		for _, p := range s.pol {
			if !s.selects(p, dst, networkingv1.PolicyTypeIngress) {
				continue
			}
			selected = true
			for _, r := range p.Spec.Ingress {
				ok = ok || s.peerMatches(p.Namespace, r.From, src) && portMatches(r.Ports, pt)
			}
		}
		ingressOK = !selected || ok
	}
	return egressOK && ingressOK
}

var (
	grpcPort     = port{corev1.ProtocolTCP, 50051}
	metricsPort  = port{corev1.ProtocolTCP, 9090}
	postgresPort = port{corev1.ProtocolTCP, 5432}
	httpsPort    = port{corev1.ProtocolTCP, 443}
	otlpPort     = port{corev1.ProtocolTCP, 4317}
	dnsPorts     = []port{{corev1.ProtocolUDP, 53}, {corev1.ProtocolTCP, 53}}
	everyPort    = append([]port{grpcPort, metricsPort, postgresPort, httpsPort, otlpPort, {corev1.ProtocolTCP, 80}, {corev1.ProtocolTCP, 8080}}, dnsPorts...)
)

func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	o := render(t, baseDir)
	sim := netpolSim{t: t, pol: o.netpols}
	// Every pod the tree runs must be covered by the sim's endpoints.
	pods := map[string]endpoint{"migrate": airlockPod("migrate")}
	for _, svc := range Services {
		pods[svc] = airlockPod(svc)
		require.Equal(t, map[string]string(pods[svc].pod), o.deployments["airlock-"+svc].Spec.Template.Labels)
	}
	require.Equal(t, map[string]string(pods["migrate"].pod), o.jobs[0].Spec.Template.Labels)

	// Only the orchestrator reaches the other services; clients reach only
	// the orchestrator.
	for _, dst := range Internal {
		for src, e := range pods {
			require.Equal(t, src == "orchestrator", sim.allowed(e, pods[dst], grpcPort), "%s -> %s:50051", src, dst)
		}
		require.False(t, sim.allowed(outside, pods[dst], grpcPort), "a client reaches %s", dst)
	}
	require.True(t, sim.allowed(outside, pods["orchestrator"], grpcPort), "clients cannot reach the orchestrator")

	// The executor has no egress at all: not to the other services, not to
	// DNS, not to the database, the model API or a collector.
	for _, dst := range append([]endpoint{outside, kubeDNS, monitoring}, mapValues(pods)...) {
		for _, p := range everyPort {
			require.False(t, sim.allowed(pods["executor"], dst, p), "executor -> %s %s/%d", dst.name, p.proto, p.num)
		}
	}

	// Postgres only from the services that keep state and the migration.
	for src, e := range pods {
		want := src == "orchestrator" || src == "budget" || src == "approval" || src == "migrate"
		require.Equal(t, want, sim.allowed(e, outside, postgresPort), "%s -> postgres", src)
		// The model API only from the generator.
		require.Equal(t, src == "generator", sim.allowed(e, outside, httpsPort), "%s -> :443", src)
		// DNS and OTLP for all but the executor.
		for _, p := range dnsPorts {
			require.Equal(t, src != "executor", sim.allowed(e, kubeDNS, p), "%s -> dns", src)
		}
		require.Equal(t, src != "executor", sim.allowed(e, outside, otlpPort), "%s -> otlp", src)
		// Prometheus scrapes every service; nobody else reads /metrics.
		if src != "migrate" {
			require.True(t, sim.allowed(monitoring, e, metricsPort), "prometheus -> %s", src)
			require.False(t, sim.allowed(outside, e, metricsPort), "outside -> %s metrics", src)
		}
	}
}

// TestNetworkPolicySimCanFail shows the simulation notices a change: without
// the default-deny policy the executor could call out, and without the
// internal-ingress policy the orchestrator could no longer reach it.
func TestNetworkPolicySimCanFail(t *testing.T) {
	t.Parallel()
	o := render(t, baseDir)
	without := func(name string) netpolSim {
		var rest []*networkingv1.NetworkPolicy
		for _, p := range o.netpols {
			if p.Name != name {
				rest = append(rest, p)
			}
		}
		require.Len(t, rest, len(o.netpols)-1, name)
		return netpolSim{t: t, pol: rest}
	}
	require.True(t, without("airlock-default-deny").allowed(airlockPod("executor"), outside, httpsPort))
	require.False(t, without("airlock-internal-ingress").allowed(airlockPod("orchestrator"), airlockPod("executor"), grpcPort))
}

func mapValues(m map[string]endpoint) []endpoint {
	var out []endpoint
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
