// Package helm holds the test of the Helm chart in gatehouse/: helm's own
// lint and template (through its Go SDK, so no helm binary is needed), and
// every rendered manifest strictly decoded into its Kubernetes API type.
// It is a package of its own so that the large helm and Kubernetes
// modules are compiled only for this test.
package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/gatehouse/gatehouse/internal/config"
)

const chartDir = "gatehouse"

// allOn turns on every optional part of the chart.
var allOn = map[string]any{
	"adminToken":     map[string]any{"value": "s3cret-admin-token"},
	"redis":          map[string]any{"enabled": true, "password": "redis-pass"},
	"autoscaling":    map[string]any{"enabled": true},
	"serviceMonitor": map[string]any{"enabled": true},
}

func TestLint(t *testing.T) {
	for _, vals := range []map[string]any{allOn, {"adminToken": map[string]any{"existingSecret": "mine"}}} {
		res := lint.RunAll(chartDir, vals, "gatehouse")
		for _, m := range res.Messages {
			t.Log(m)
			if m.Severity >= support.WarningSev {
				t.Errorf("helm lint: %v", m)
			}
		}
	}
}

// render is `helm template`: the chart's manifests for values, by file.
func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: "edge", Namespace: "gatehouse", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}

// object is a rendered manifest: its kind and its strictly decoded value.
type object struct {
	file string
	kind string
	obj  any
}

// decodeStrict decodes every manifest of out into its typed Kubernetes
// object with unknown fields refused, as the API server's strict field
// validation would: a misspelt or misplaced field fails here. Kinds
// without a type in k8s.io/api (ServiceMonitor, a CRD) are checked for
// apiVersion and kind only.
func decodeStrict(t reporter, out map[string]string) []object {
	t.Helper()
	files := make([]string, 0, len(out))
	for f := range out {
		files = append(files, f)
	}
	sort.Strings(files)
	var objs []object
	for _, f := range files {
		if !strings.HasSuffix(f, ".yaml") {
			continue
		}
		for i, doc := range strings.Split(out[f], "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			j, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Errorf("%s #%d: not YAML: %v\n%s", f, i, err, doc)
				continue
			}
			if string(j) == "null" {
				continue
			}
			var tm struct{ APIVersion, Kind string }
			if err := json.Unmarshal(j, &tm); err != nil || tm.APIVersion == "" || tm.Kind == "" {
				t.Errorf("%s #%d: no apiVersion or kind: %s", f, i, j)
				continue
			}
			var obj any
			switch tm.APIVersion + "/" + tm.Kind {
			case "apps/v1/Deployment":
				obj = &appsv1.Deployment{}
			case "v1/Service":
				obj = &corev1.Service{}
			case "v1/ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1/Secret":
				obj = &corev1.Secret{}
			case "v1/ServiceAccount":
				obj = &corev1.ServiceAccount{}
			case "policy/v1/PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			case "autoscaling/v2/HorizontalPodAutoscaler":
				obj = &autoscalingv2.HorizontalPodAutoscaler{}
			case "monitoring.coreos.com/v1/ServiceMonitor":
				objs = append(objs, object{f, tm.Kind, nil})
				continue
			default:
				t.Errorf("%s: unexpected %s %s", f, tm.APIVersion, tm.Kind)
				continue
			}
			dec := json.NewDecoder(bytes.NewReader(j))
			dec.DisallowUnknownFields()
			if err := dec.Decode(obj); err != nil {
				t.Errorf("%s: %s does not match the Kubernetes schema: %v", f, tm.Kind, err)
				continue
			}
			if _, err := dec.Token(); err != io.EOF {
				t.Errorf("%s: trailing data", f)
			}
			objs = append(objs, object{f, tm.Kind, obj})
		}
	}
	return objs
}

func TestTemplate(t *testing.T) {
	out, err := render(t, allOn)
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeStrict(t, out)
	kinds := map[string]int{}
	var dep *appsv1.Deployment
	var cm *corev1.ConfigMap
	for _, o := range objs {
		kinds[o.kind]++
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			dep = v
		case *corev1.ConfigMap:
			cm = v
		}
	}
	want := map[string]int{"Deployment": 1, "Service": 1, "ConfigMap": 1, "Secret": 2, "ServiceAccount": 1,
		"PodDisruptionBudget": 1, "HorizontalPodAutoscaler": 1, "ServiceMonitor": 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}
	if dep == nil || cm == nil {
		t.Fatal("no Deployment or ConfigMap")
	}
	// The pods roll when the config changes.
	sum := dep.Spec.Template.Annotations["checksum/config"]
	if len(sum) != 64 {
		t.Errorf("checksum/config = %q", sum)
	}
	changed := map[string]any{"config": "listeners: [{address: 0.0.0.0:8080}]\n"}
	for k, v := range allOn {
		changed[k] = v
	}
	out2, err := render(t, changed)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range decodeStrict(t, out2) {
		if d, ok := o.obj.(*appsv1.Deployment); ok && d.Spec.Template.Annotations["checksum/config"] == sum {
			t.Error("checksum/config did not change with the config")
		}
	}

	c := dep.Spec.Template.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || fmt.Sprint(sc.Capabilities.Drop) != "[ALL]" {
		t.Errorf("container securityContext = %+v", sc)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe = %+v", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe = %+v", c.ReadinessProbe)
	}
	if dep.Spec.Replicas != nil {
		t.Error("replicas set although the HPA scales the Deployment")
	}
	envs := map[string]bool{}
	for _, e := range c.Env {
		envs[e.Name] = e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
	}
	if !envs["GATEHOUSE_ADMIN_TOKEN"] || !envs["GATEHOUSE_REDIS_PASSWORD"] {
		t.Errorf("secret env = %v", envs)
	}

	// The chart's default config is a valid gatehouse config.
	env := map[string]string{"GATEHOUSE_ADMIN_TOKEN": "s3cret-admin-token", "GATEHOUSE_REDIS_PASSWORD": "redis-pass"}
	if _, err := config.LoadBytes("configmap/gatehouse.yaml", []byte(cm.Data["gatehouse.yaml"]), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}); err != nil {
		t.Errorf("the chart's default config does not load:\n%v", err)
	}
}

func TestTemplateRequiresAdminToken(t *testing.T) {
	if _, err := render(t, map[string]any{}); err == nil || !strings.Contains(err.Error(), "adminToken") {
		t.Errorf("render without an admin token: err = %v, want the adminToken failure", err)
	}
	// The gateway refuses an admin token under 16 characters; the chart
	// says so at install rather than in a crash-looping pod.
	if _, err := render(t, map[string]any{"adminToken": map[string]any{"value": "short"}}); err == nil || !strings.Contains(err.Error(), "16") {
		t.Errorf("render with a short admin token: err = %v, want the length failure", err)
	}
}

// A misplaced field is caught by the strict decoding: the check is not
// vacuous.
func TestDecodeStrictCatchesUnknownFields(t *testing.T) {
	bad := map[string]string{"x/templates/d.yaml": "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 2\n"}
	rec := &recorder{}
	decodeStrict(rec, bad)
	if !strings.Contains(rec.msg, "unknown field") {
		t.Errorf("strict decoding let a misspelt field through: %q", rec.msg)
	}
}

// reporter is the part of testing.T decodeStrict reports through.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

type recorder struct{ msg string }

func (*recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.msg += fmt.Sprintf(format, args...) + "\n"
}
