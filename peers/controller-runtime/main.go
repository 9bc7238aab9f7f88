// Command peer is a Tenant admission webhook written the way a Go team would write it: on
// sigs.k8s.io/controller-runtime's webhook server, with apimachinery's field errors. It exists to be
// measured beside hanzo-s3-operator (benches/admission_apply.rs) and is not shipped.
//
// It applies every default hanzo-s3-operator applies, and the subset of its checks that the
// benchmark corpus exercises: pools present, pool names (DNS label, unique), servers and volumes
// per server, the small-pool floor, erasure-set layout, and the two policy enums. The benchmark
// asserts, before it measures, that this peer and hanzo-s3-operator give the same verdict, the same
// field paths and the same defaulted object for every Tenant of the corpus.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

type config struct {
	s3Image       string
	kesImage      string
	clusterDomain string
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 9443, "port to listen on")
	certDir := flag.String("cert-dir", "", "directory holding tls.crt and tls.key")
	cfg := config{}
	flag.StringVar(&cfg.s3Image, "s3-image", "ghcr.io/hanzos3/s3:RELEASE.2025-04-08T15-41-24Z", "default server image")
	flag.StringVar(&cfg.kesImage, "kes-image", "ghcr.io/hanzos3/kes:2025-03-12T09-35-18Z", "default KES image")
	flag.StringVar(&cfg.clusterDomain, "cluster-domain", "cluster.local", "cluster DNS domain")
	flag.Parse()
	if *certDir == "" {
		fmt.Fprintln(os.Stderr, "--cert-dir is required")
		os.Exit(2)
	}
	server := webhook.NewServer(webhook.Options{Host: *host, Port: *port, CertDir: *certDir})
	server.Register("/mutate", &webhook.Admission{Handler: admission.HandlerFunc(cfg.mutate)})
	server.Register("/validate", &webhook.Admission{Handler: admission.HandlerFunc(cfg.validate)})
	server.Register("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	if err := server.Start(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

var tenantGK = schema.GroupKind{Group: "minio.min.io", Kind: "Tenant"}

type object = map[string]any

func child(parent object, key string) object {
	if m, ok := parent[key].(object); ok {
		return m
	}
	m := object{}
	parent[key] = m
	return m
}

func str(m object, key string) string {
	s, _ := m[key].(string)
	return s
}

func fill(m object, key, value string) {
	if str(m, key) == "" {
		m[key] = value
	}
}

func number(m object, key string) int64 {
	f, _ := m[key].(float64)
	return int64(f)
}

// decode reads the Tenant as a plain JSON tree: the peer needs no generated types for the fields
// it touches.
func decode(req admission.Request) (object, error) {
	tenant := object{}
	if err := json.Unmarshal(req.Object.Raw, &tenant); err != nil {
		return nil, err
	}
	return tenant, nil
}

func (c config) applyDefaults(tenant object, namespace string) {
	meta, _ := tenant["metadata"].(object)
	name := ""
	if meta != nil {
		name = str(meta, "name")
		// On CREATE the apiserver sets the object's namespace only after admission.
		if ns := str(meta, "namespace"); ns != "" {
			namespace = ns
		}
	}
	spec := child(tenant, "spec")
	fill(spec, "podManagementPolicy", "Parallel")
	fill(spec, "image", c.s3Image)
	fill(spec, "imagePullPolicy", "IfNotPresent")
	fill(spec, "mountPath", "/export")
	if v, ok := spec["requestAutoCert"]; !ok || v == nil {
		spec["requestAutoCert"] = true
	}
	if pools, ok := spec["pools"].([]any); ok {
		for i, p := range pools {
			if pool, ok := p.(object); ok {
				fill(pool, "name", fmt.Sprintf("ss-%d", i))
			}
		}
	}
	if name != "" {
		fill(spec, "serviceAccountName", name+"-sa")
	}
	if kes, ok := spec["kes"].(object); ok {
		fill(kes, "image", c.kesImage)
		if number(kes, "replicas") == 0 {
			kes["replicas"] = 2
		}
		fill(kes, "imagePullPolicy", "IfNotPresent")
		fill(kes, "keyName", "my-minio-key")
		if str(kes, "gcpCredentialSecretName") != "" {
			fill(kes, "serviceAccountName", "default")
		}
	}
	if name != "" && namespace != "" {
		cert := child(spec, "certConfig")
		fill(cert, "commonName", fmt.Sprintf("*.%s-hl.%s.svc.%s", name, namespace, c.clusterDomain))
		if orgs, _ := cert["organizationName"].([]any); len(orgs) == 0 {
			cert["organizationName"] = []any{"system:nodes"}
		}
	}
}

// defaulted is the review's Tenant with every default applied; or, when there is nothing to judge
// (a DELETE) or it cannot be read, the answer to give instead.
func (c config) defaulted(req admission.Request) (object, *admission.Response) {
	if req.Operation != "CREATE" && req.Operation != "UPDATE" {
		answer := admission.Allowed("")
		return nil, &answer
	}
	tenant, err := decode(req)
	if err != nil {
		answer := admission.Errored(http.StatusBadRequest, err)
		return nil, &answer
	}
	c.applyDefaults(tenant, req.Namespace)
	return tenant, nil
}

func (c config) mutate(_ context.Context, req admission.Request) admission.Response {
	tenant, answer := c.defaulted(req)
	if answer != nil {
		return *answer
	}
	defaulted, err := json.Marshal(tenant)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, defaulted)
}

func (c config) validate(_ context.Context, req admission.Request) admission.Response {
	tenant, answer := c.defaulted(req)
	if answer != nil {
		return *answer
	}
	errs := check(tenant)
	if len(errs) == 0 {
		return admission.Allowed("")
	}
	name := ""
	if meta, ok := tenant["metadata"].(object); ok {
		name = str(meta, "name")
	}
	status := apierrors.NewInvalid(tenantGK, name, errs).ErrStatus
	return admission.Response{AdmissionResponse: admissionResponse(status)}
}

func check(tenant object) field.ErrorList {
	var errs field.ErrorList
	spec := child(tenant, "spec")
	at := field.NewPath("spec")
	pools, _ := spec["pools"].([]any)
	if len(pools) == 0 {
		errs = append(errs, field.Required(at.Child("pools"), "pools must be configured: a tenant needs at least one pool of servers"))
	}
	seen := map[string]bool{}
	for i, p := range pools {
		pool, _ := p.(object)
		if pool == nil {
			continue
		}
		poolAt := at.Child("pools").Index(i)
		name := str(pool, "name")
		if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
			errs = append(errs, field.Invalid(poolAt.Child("name"), name, msgs[0]))
		} else if seen[name] {
			errs = append(errs, field.Duplicate(poolAt.Child("name"), name))
		}
		seen[name] = true
		errs = append(errs, checkSizing(poolAt, name, number(pool, "servers"), number(pool, "volumesPerServer"))...)
	}
	if p := str(spec, "podManagementPolicy"); p != "OrderedReady" && p != "Parallel" {
		errs = append(errs, field.NotSupported(at.Child("podManagementPolicy"), p, []string{"OrderedReady", "Parallel"}))
	}
	if p := str(spec, "imagePullPolicy"); p != "Always" && p != "IfNotPresent" && p != "Never" {
		errs = append(errs, field.NotSupported(at.Child("imagePullPolicy"), p, []string{"Always", "IfNotPresent", "Never"}))
	}
	return errs
}

func checkSizing(at *field.Path, name string, servers, volumes int64) field.ErrorList {
	var errs field.ErrorList
	if servers < 1 {
		errs = append(errs, field.Invalid(at.Child("servers"), servers, fmt.Sprintf("pool %q needs at least 1 server", name)))
	}
	if volumes < 1 {
		errs = append(errs, field.Invalid(at.Child("volumesPerServer"), volumes, fmt.Sprintf("pool %q needs at least 1 volume per server", name)))
	}
	if servers < 1 || volumes < 1 {
		return errs
	}
	total := servers * volumes
	minimum := map[int64]int64{2: 4, 3: 6}[servers]
	if total < 4 && minimum > 0 {
		return append(errs, field.Invalid(at.Child("volumesPerServer"), volumes, fmt.Sprintf("a pool with %d servers needs at least %d volumes in total", servers, minimum)))
	}
	if !erasureSetsPossible(servers, volumes) {
		errs = append(errs, field.Invalid(at, fmt.Sprintf("servers: %d, volumesPerServer: %d", servers, volumes), "the drives cannot be split into erasure sets of 2 to 16 drives spread evenly over the servers"))
	}
	return errs
}

func erasureSetsPossible(servers, volumes int64) bool {
	total := servers * volumes
	if total == 1 {
		return true
	}
	spread := volumes
	if servers > 1 {
		spread = servers
	}
	for size := int64(2); size <= 16; size++ {
		if total%size != 0 {
			continue
		}
		if (spread > size && spread%size == 0) || (spread <= size && size%spread == 0) {
			return true
		}
	}
	return false
}
