package check

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The kustomize roots CI renders: the default tree and the gVisor overlay.
const (
	baseDir   = "../k8s"
	onlyBase  = "../k8s/base"
	gvisorDir = "../k8s/overlays/gvisor"
)

// objects is a rendered tree decoded into the Kubernetes API types.
type objects struct {
	all          []runtime.Object
	namespaces   []*corev1.Namespace
	deployments  map[string]*appsv1.Deployment
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	accounts     map[string]*corev1.ServiceAccount
	jobs         []*batchv1.Job
	pdbs         []*policyv1.PodDisruptionBudget
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	netpols      []*networkingv1.NetworkPolicy
	runtimeClass map[string]*nodev1.RuntimeClass
}

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme, nodev1.AddToScheme,
	} {
		require.NoError(t, add(s))
	}
	return s
}

// strictDecoder decodes YAML into the registered API types and fails on
// unknown or duplicate fields and on kinds it does not know.
func strictDecoder(t *testing.T) runtime.Decoder {
	s := newScheme(t)
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s,
		json.SerializerOptions{Yaml: true, Strict: true})
}

// render builds dir with the pinned kustomize library and decodes every
// object strictly.
func render(t *testing.T, dir string) *objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err, "kustomize build %s", dir)
	dec := strictDecoder(t)
	o := &objects{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, accounts: map[string]*corev1.ServiceAccount{},
		runtimeClass: map[string]*nodev1.RuntimeClass{},
	}
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		require.NoError(t, err)
		obj, _, err := dec.Decode(y, nil, nil)
		require.NoError(t, err, "%s %s does not decode strictly into the Kubernetes API types", r.GetKind(), r.GetName())
		o.all = append(o.all, obj)
		switch v := obj.(type) {
		case *corev1.Namespace:
			o.namespaces = append(o.namespaces, v)
		case *appsv1.Deployment:
			o.deployments[v.Name] = v
		case *corev1.Service:
			o.services[v.Name] = v
		case *corev1.ConfigMap:
			o.configMaps[v.Name] = v
		case *corev1.ServiceAccount:
			o.accounts[v.Name] = v
		case *batchv1.Job:
			o.jobs = append(o.jobs, v)
		case *policyv1.PodDisruptionBudget:
			o.pdbs = append(o.pdbs, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			o.hpas = append(o.hpas, v)
		case *networkingv1.NetworkPolicy:
			o.netpols = append(o.netpols, v)
		case *nodev1.RuntimeClass:
			o.runtimeClass[v.Name] = v
		default:
			t.Fatalf("%s %s: a kind the checks do not cover", r.GetKind(), r.GetName())
		}
	}
	require.NotEmpty(t, o.deployments, "%s rendered no Deployment", dir)
	return o
}

func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	dec := strictDecoder(t)
	good := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2}\n"
	_, _, err := dec.Decode([]byte(good), nil, nil)
	require.NoError(t, err)
	for name, bad := range map[string]string{
		"unknown field":   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n",
		"duplicate field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2, replicas: 3}\n",
		"unknown kind":    "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n",
		"wrong type":      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n",
	} {
		_, _, err := dec.Decode([]byte(bad), nil, nil)
		require.Error(t, err, name)
	}
}

func TestKustomizeRendersStrictly(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{baseDir, onlyBase, gvisorDir} {
		o := render(t, dir)
		for _, obj := range o.all {
			m, err := metaOf(obj)
			require.NoError(t, err)
			if _, ok := obj.(*corev1.Namespace); ok {
				continue
			}
			if _, ok := obj.(*nodev1.RuntimeClass); ok {
				continue // cluster-scoped
			}
			require.Equal(t, "airlock", m.GetNamespace(), "%s: every namespaced object lives in airlock", m.GetName())
			require.Equal(t, "airlock", m.GetLabels()["app.kubernetes.io/part-of"], m.GetName())
		}
	}
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}

func TestKustomizeOneDeploymentAndServicePerService(t *testing.T) {
	t.Parallel()
	o := render(t, baseDir)
	require.Len(t, o.deployments, len(Services))
	for _, svc := range Services {
		name := "airlock-" + svc
		d, ok := o.deployments[name]
		require.True(t, ok, "no Deployment %s", name)
		pod := d.Spec.Template
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		require.NoError(t, err)
		require.True(t, sel.Matches(labels.Set(pod.Labels)), "%s: selector does not match its pods", name)
		require.Equal(t, svc, pod.Labels["app.kubernetes.io/component"], name)
		require.GreaterOrEqual(t, *d.Spec.Replicas, int32(2), "%s: at least two replicas", name)
		require.Len(t, pod.Spec.Containers, 1, name)
		c := pod.Spec.Containers[0]
		require.True(t, strings.HasPrefix(c.Image, "airlock:"), "%s: image %q", name, c.Image)
		require.Equal(t, []string{"serve", svc}, c.Args, name)
		require.Empty(t, c.Command, "%s: the image's entrypoint is airlock", name)
		grpcPort := containerPort(t, c, "grpc")
		require.Equal(t, int32(50051), grpcPort)
		containerPort(t, c, "metrics")

		// The Service reaches exactly these pods on the gRPC port.
		s, ok := o.services[name]
		require.True(t, ok, "no Service %s", name)
		require.True(t, labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(pod.Labels)), "%s: Service selector", name)
		var found bool
		for _, p := range s.Spec.Ports {
			if p.Name == "grpc" {
				found = true
				require.Equal(t, int32(50051), p.Port)
				require.Equal(t, intstr.FromString("grpc"), p.TargetPort)
			}
		}
		require.True(t, found, "%s: Service has no grpc port", name)

		// Its service account exists and mounts no API token.
		sa, ok := o.accounts[pod.Spec.ServiceAccountName]
		require.True(t, ok, "%s: service account %q not rendered", name, pod.Spec.ServiceAccountName)
		require.False(t, *sa.AutomountServiceAccountToken, name)
		require.False(t, *pod.Spec.AutomountServiceAccountToken, name)

		// Every ConfigMap it reads is rendered (with kustomize's hashed name).
		for _, ef := range c.EnvFrom {
			require.NotNil(t, ef.ConfigMapRef, name)
			require.Contains(t, o.configMaps, ef.ConfigMapRef.Name, "%s: envFrom %s", name, ef.ConfigMapRef.Name)
		}
		for _, v := range pod.Spec.Volumes {
			if v.ConfigMap != nil {
				require.Contains(t, o.configMaps, v.ConfigMap.Name, "%s: volume %s", name, v.Name)
			}
		}
		mounted := map[string]bool{}
		for _, v := range pod.Spec.Volumes {
			mounted[v.Name] = true
		}
		for _, m := range c.VolumeMounts {
			require.True(t, mounted[m.Name], "%s: mount of undeclared volume %s", name, m.Name)
		}
	}
}

func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

func TestKustomizeProbesAreGRPC(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{baseDir, onlyBase, gvisorDir} {
		for name, d := range render(t, dir).deployments {
			c := d.Spec.Template.Spec.Containers[0]
			grpcPort := containerPort(t, c, "grpc")
			for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
				require.NotNil(t, p, "%s: no %s probe", name, kind)
				require.NotNil(t, p.GRPC, "%s: the %s probe is not a native gRPC health probe", name, kind)
				require.Equal(t, grpcPort, p.GRPC.Port, "%s: %s probe port", name, kind)
			}
			// Liveness must be slower to give up than readiness, so a dependency
			// blip takes a pod out of rotation long before it restarts it.
			live := c.LivenessProbe.PeriodSeconds * c.LivenessProbe.FailureThreshold
			ready := c.ReadinessProbe.PeriodSeconds * c.ReadinessProbe.FailureThreshold
			require.Greater(t, live, ready, name)
			// Graceful shutdown (--shutdown-timeout) must fit in the grace period.
			require.GreaterOrEqual(t, *d.Spec.Template.Spec.TerminationGracePeriodSeconds, int64(30), name)
		}
	}
}

func TestKustomizeResourcesAndSecurityContexts(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{baseDir, onlyBase, gvisorDir} {
		o := render(t, dir)
		for _, job := range o.jobs {
			checkPod(t, dir, "job/"+job.Name, job.Spec.Template.Spec)
		}
		for name, d := range o.deployments {
			spec := d.Spec.Template.Spec
			checkPod(t, dir, name, spec)
			if name == "airlock-executor" {
				// The executor's choice of user namespaces (README.md): the base
				// gives it host user namespaces off plus an unmasked /proc; the
				// gVisor overlay a gVisor RuntimeClass instead.
				c := spec.Containers[0]
				if dir == gvisorDir {
					require.NotNil(t, spec.RuntimeClassName, "gvisor overlay: executor has no runtimeClassName")
					require.Contains(t, o.runtimeClass, *spec.RuntimeClassName)
					require.Equal(t, "runsc", o.runtimeClass[*spec.RuntimeClassName].Handler)
					require.Nil(t, spec.HostUsers)
					require.Nil(t, c.SecurityContext.ProcMount)
				} else {
					require.NotNil(t, spec.HostUsers, "executor: hostUsers must be set false")
					require.False(t, *spec.HostUsers, "executor: hostUsers must be false")
					require.NotNil(t, c.SecurityContext.ProcMount)
					require.Equal(t, corev1.UnmaskedProcMount, *c.SecurityContext.ProcMount)
					require.Nil(t, spec.RuntimeClassName)
				}
				continue
			}
			// Every other pod meets Pod Security "restricted".
			require.Nil(t, spec.HostUsers, name)
			require.NotNil(t, spec.SecurityContext.SeccompProfile, name)
			require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, spec.SecurityContext.SeccompProfile.Type, name)
			for _, c := range append(spec.InitContainers, spec.Containers...) {
				require.Nil(t, c.SecurityContext.ProcMount, "%s/%s", name, c.Name)
			}
		}
	}
}

// checkPod holds for every pod: non-root, no privilege, read-only root,
// no capabilities, no host namespaces, requests and limits set.
func checkPod(t *testing.T, dir, name string, spec corev1.PodSpec) {
	t.Helper()
	where := dir + ": " + name
	require.False(t, spec.HostNetwork || spec.HostPID || spec.HostIPC, where)
	require.NotNil(t, spec.SecurityContext, where)
	require.NotNil(t, spec.SecurityContext.RunAsNonRoot, where)
	require.True(t, *spec.SecurityContext.RunAsNonRoot, where)
	require.NotNil(t, spec.SecurityContext.RunAsUser, where)
	require.NotZero(t, *spec.SecurityContext.RunAsUser, where)
	for _, v := range spec.Volumes {
		require.Nil(t, v.HostPath, "%s: hostPath volume %s", where, v.Name)
	}
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		w := where + "/" + c.Name
		sc := c.SecurityContext
		require.NotNil(t, sc, w)
		require.NotNil(t, sc.AllowPrivilegeEscalation, w)
		require.False(t, *sc.AllowPrivilegeEscalation, w)
		require.True(t, sc.Privileged == nil || !*sc.Privileged, w)
		require.NotNil(t, sc.ReadOnlyRootFilesystem, w)
		require.True(t, *sc.ReadOnlyRootFilesystem, w)
		require.NotNil(t, sc.Capabilities, w)
		require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, w)
		require.Empty(t, sc.Capabilities.Add, w)
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, ok := c.Resources.Requests[res]
			require.True(t, ok, "%s: no %s request", w, res)
			lim, ok := c.Resources.Limits[res]
			require.True(t, ok, "%s: no %s limit", w, res)
			require.LessOrEqual(t, req.Cmp(lim), 0, "%s: %s request above its limit", w, res)
		}
	}
}

func TestKustomizeSecretsAndSettings(t *testing.T) {
	t.Parallel()
	o := render(t, baseDir)
	// Which secret keys each workload may see: the model key only reaches the
	// generator, the database URL only the services that keep state.
	want := map[string][]string{
		"airlock-orchestrator": {"database-url", "service-token"},
		"airlock-generator":    {"service-token", "xai-api-key"},
		"airlock-policy":       {"service-token"},
		"airlock-budget":       {"database-url", "service-token"},
		"airlock-executor":     {"service-token"},
		"airlock-approval":     {"database-url", "service-token"},
	}
	envVar := map[string]string{"database-url": "DATABASE_URL", "service-token": "AIRLOCK_SERVICE_TOKEN", "xai-api-key": "XAI_API_KEY"}
	for name, d := range o.deployments {
		got := map[string]bool{}
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					require.NotEmpty(t, e.Value, "%s: %s", name, e.Name)
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				require.NotNil(t, ref, "%s: %s comes from neither a value nor the Secret", name, e.Name)
				require.Equal(t, "airlock", ref.Name, "%s: %s", name, e.Name)
				require.Equal(t, envVar[ref.Key], e.Name, "%s: secret key %s", name, ref.Key)
				got[ref.Key] = true
			}
		}
		var keys []string
		for k := range got {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		require.Equal(t, want[name], keys, name)
	}
	require.Len(t, o.jobs, 1)
	job := o.jobs[0]
	require.Equal(t, []string{"migrate"}, job.Spec.Template.Spec.Containers[0].Args)
	require.Equal(t, "DATABASE_URL", job.Spec.Template.Spec.Containers[0].Env[0].Name)

	// The orchestrator finds every peer through its Service.
	orch := o.deployments["airlock-orchestrator"].Spec.Template.Spec.Containers[0]
	for _, peer := range Internal {
		var addr string
		for _, e := range orch.Env {
			if e.Name == "AIRLOCK_"+strings.ToUpper(peer)+"_ADDR" {
				addr = e.Value
			}
		}
		require.Equal(t, "airlock-"+peer+":50051", addr, "orchestrator's %s address", peer)
		require.Contains(t, o.services, "airlock-"+peer)
	}

	// The price table is in its ConfigMap and the setting points at the mount.
	var settings, prices *corev1.ConfigMap
	for name, cm := range o.configMaps {
		switch {
		case strings.HasPrefix(name, "airlock-settings-"):
			settings = cm
		case strings.HasPrefix(name, "airlock-prices-"):
			prices = cm
		}
	}
	require.NotNil(t, settings)
	require.NotNil(t, prices)
	require.Contains(t, prices.Data, "prices.yaml")
	require.Equal(t, "/etc/airlock/prices/prices.yaml", settings.Data["AIRLOCK_PRICES"])

	// The policy service reads its directory from the policies ConfigMap,
	// which ships a copy of the repository's default policy for the cluster
	// to edit (cmd/airlock's TestDeployPolicyIsValid parses it with the
	// policy service's own parser).
	pols, ok := o.configMaps["airlock-policies"]
	require.True(t, ok, "the policies ConfigMap keeps a fixed name so edits reload in place")
	require.Contains(t, pols.Data, "default.yaml")
	pod := o.deployments["airlock-policy"].Spec.Template.Spec
	var dir string
	for _, e := range pod.Containers[0].Env {
		if e.Name == "AIRLOCK_POLICY_DIR" {
			dir = e.Value
		}
	}
	require.NotEmpty(t, dir)
	var mounted bool
	for _, m := range pod.Containers[0].VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == "airlock-policies" {
				require.Equal(t, dir, m.MountPath)
				mounted = true
			}
		}
	}
	require.True(t, mounted, "policies not mounted into the policy service")
}

func TestKustomizeDisruptionBudgetsAndAutoscaling(t *testing.T) {
	t.Parallel()
	o := render(t, baseDir)
	for name, d := range o.deployments {
		podLabels := labels.Set(d.Spec.Template.Labels)
		var n int
		for _, pdb := range o.pdbs {
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			require.NoError(t, err)
			if sel.Matches(podLabels) {
				n++
				// With maxUnavailable 0 a drain would hang for ever.
				require.True(t, pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.IntValue() >= 1 ||
					pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() < int(*d.Spec.Replicas), pdb.Name)
			}
		}
		require.Equal(t, 1, n, "%s: want exactly one PodDisruptionBudget", name)
	}
	scaled := map[string]bool{}
	for _, h := range o.hpas {
		require.Equal(t, "Deployment", h.Spec.ScaleTargetRef.Kind)
		require.Contains(t, o.deployments, h.Spec.ScaleTargetRef.Name)
		require.GreaterOrEqual(t, *h.Spec.MinReplicas, int32(2), h.Name)
		require.Greater(t, h.Spec.MaxReplicas, *h.Spec.MinReplicas, h.Name)
		require.NotEmpty(t, h.Spec.Metrics, h.Name)
		// CPU utilisation needs a CPU request on the container.
		c := o.deployments[h.Spec.ScaleTargetRef.Name].Spec.Template.Spec.Containers[0]
		require.Contains(t, c.Resources.Requests, corev1.ResourceCPU)
		scaled[h.Spec.ScaleTargetRef.Name] = true
	}
	require.Equal(t, map[string]bool{"airlock-orchestrator": true, "airlock-executor": true}, scaled)
}

// TestKustomizePathsAreMounted: every setting that names a file or directory
// points into a volume the container mounts (the root file system is
// read-only), and a file from a ConfigMap is a key that ConfigMap has.
func TestKustomizePathsAreMounted(t *testing.T) {
	t.Parallel()
	o := render(t, baseDir)
	var checked int
	for name, d := range o.deployments {
		spec := d.Spec.Template.Spec
		c := spec.Containers[0]
		values := map[string]string{}
		for _, ef := range c.EnvFrom {
			for k, v := range o.configMaps[ef.ConfigMapRef.Name].Data {
				values[k] = v
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				values[e.Name] = e.Value
			}
		}
		for k, v := range values {
			if !strings.HasPrefix(v, "/") {
				continue
			}
			var mount *corev1.VolumeMount
			for i, m := range c.VolumeMounts {
				if v == m.MountPath || strings.HasPrefix(v, m.MountPath+"/") {
					mount = &c.VolumeMounts[i]
				}
			}
			require.NotNil(t, mount, "%s: %s=%s is on no mounted volume", name, k, v)
			for _, vol := range spec.Volumes {
				if vol.Name != mount.Name || vol.ConfigMap == nil || v == mount.MountPath {
					continue
				}
				key := strings.TrimPrefix(v, mount.MountPath+"/")
				require.Contains(t, o.configMaps[vol.ConfigMap.Name].Data, key, "%s: %s=%s", name, k, v)
			}
			checked++
		}
	}
	require.GreaterOrEqual(t, checked, 2*len(Services), "AIRLOCK_PRICES and AIRLOCK_DATA_DIR in every service at least")
}
