#!/usr/bin/env python3
"""Turns the rendered dev overlay into what `podman kube play` runs, one pod per file.

    rewrite.py prepare RENDERED OUT PORT_BASE     Secrets, ConfigMaps, PostgreSQL, the coordinators
    rewrite.py worker  RENDERED OUT PORT_BASE NAME INDEX     one worker pod (and its certificate)
    rewrite.py verify  RENDERED OUT PORT_BASE VERIFY_JOB     the verify Job as a pod

Everything not rewritten comes from the manifests as rendered: image, command and args, env,
securityContext, resources, volumes. Each rewrite is printed on one line, starting "rewrite:".
Certificates are made with openssl the way cert-manager would make them from the manifests'
Certificate resources and the workers' csi-driver volume attributes (see certs()).
"""
import base64
import copy
import os
import subprocess
import sys

import yaml

PRINTED = set()


def rewrite(text):
    if text not in PRINTED:
        PRINTED.add(text)
        print("rewrite: " + text, flush=True)


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind, name=None):
    for d in docs:
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name or d["metadata"]["name"].startswith(name + "-")):
            return d
    raise SystemExit(f"rewrite.py: no {kind} {name or ''} in the rendered overlay")


def ports(base):
    base = int(base)
    return {
        "postgres": base + 32,
        "coordinator_grpc": [base, base + 1],
        "coordinator_metrics": [base + 10, base + 11],
        "worker_metrics": lambda i: base + 100 + i,
    }


HOSTS = ["sluice-postgres", "sluice-coordinator"]


def dump(path, docs):
    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)


OUT = None


def secret(name, files):
    """A Secret as the kubelet would project it: a directory of files, one per key. podman 4.3's
    own Secrets cannot be used: `kube play` stores a Secret manifest as YAML and then fails to read
    it back for secretKeyRef ("not valid JSON"), and a JSON one fails too ("illegal base64 data")."""
    d = os.path.join(OUT, "secrets", name)
    os.makedirs(d, exist_ok=True)
    for k, v in files.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v if isinstance(v, bytes) else v.encode())
    return name


def resolve_secrets(spec, what):
    """secretKeyRef env -> value; secret volumes -> hostPath of the projected directory with the
    kubelet's ownership and mode (root:fsGroup, defaultMode)."""
    group = spec.get("securityContext", {}).get("fsGroup")
    for c in spec["containers"]:
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                name = ref["name"]
                if not os.path.isdir(os.path.join(OUT, "secrets", name)):
                    name = name.rsplit("-", 1)[0]  # kustomize's hash suffix
                path = os.path.join(OUT, "secrets", name, ref["key"])
                e.pop("valueFrom")
                e["value"] = open(path).read()
                rewrite(f"{what}: env {e['name']} from secretKeyRef -> value (podman 4.3 cannot read a Secret into env)")
    for v in spec.get("volumes", []):
        if "secret" in v:
            name = v["secret"]["secretName"]
            d = os.path.join(OUT, "secrets", name)
            mode = v["secret"].get("defaultMode", 0o644)
            os.chmod(d, 0o755)
            for f in os.listdir(d):
                os.chown(os.path.join(d, f), 0, group if group is not None else 0)
                os.chmod(os.path.join(d, f), mode)
            v.pop("secret")
            v["hostPath"] = {"path": d, "type": "Directory"}
            rewrite(f"{what}: secret volume {name} -> hostPath of its files, root:{group} mode {oct(mode)} as the kubelet projects it with fsGroup")


# --- certificates: what cert-manager would issue -----------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ca(out):
    d = os.path.join(out, "pki")
    if os.path.exists(os.path.join(d, "ca.crt")):
        return d
    os.makedirs(d, exist_ok=True)
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=d)
    openssl("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "365", "-subj", "/O=Sluice/CN=sluice-dev-ca",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", "ca.crt", cwd=d)
    return d


USAGE = {"digital signature": "digitalSignature", "key encipherment": "keyEncipherment"}
EKU = {"server auth": "serverAuth", "client auth": "clientAuth"}


def issue(out, name, common_name, dns=(), ips=(), uris=(), usages=()):
    """A leaf signed by the dev CA, like cert-manager's CA issuer: ECDSA P-256 (the manifests'
    privateKey), SEC1 key (cert-manager's default PKCS1 encoding), the SANs and usages given."""
    d = ca(out)
    sans = [f"DNS:{n}" for n in dns] + [f"IP:{i}" for i in ips] + [f"URI:{u}" for u in uris]
    ku = ",".join(USAGE[u] for u in usages if u in USAGE)
    eku = ",".join(EKU[u] for u in usages if u in EKU)
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n")
        f.write(f"keyUsage=critical,{ku}\n")
        f.write(f"extendedKeyUsage={eku}\n")
        f.write("subjectAltName=" + ",".join(sans) + "\n")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=d)
    openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/O=Sluice/CN={common_name}", "-out", f"{name}.csr", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "30",
            "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=d)
    read = lambda f: open(os.path.join(d, f), "rb").read()
    return {"tls.crt": read(f"{name}.crt"), "tls.key": read(f"{name}.key"), "ca.crt": read("ca.crt")}


def certificate_secret(docs, out, cert_name):
    c = find(docs, "Certificate", cert_name)["spec"]
    files = issue(out, cert_name, c.get("commonName", cert_name), c.get("dnsNames", []), c.get("ipAddresses", []),
                  c.get("uris", []), c.get("usages", []))
    return secret(c["secretName"], files), files


# --- pods ---------------------------------------------------------------------------------------

def host_aliases(spec):
    spec["hostAliases"] = [{"ip": "127.0.0.1", "hostnames": HOSTS}]
    rewrite(f"Services sluice-coordinator and sluice-postgres -> hostAliases to 127.0.0.1 (podman has no Services; --network host)")
    # podman 4.3 records hostAliases on the host network but leaves them out of the containers'
    # /etc/hosts: the same entries in a hosts file mounted read-only.
    hosts = os.path.join(OUT, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n::1 localhost\n127.0.0.1 " + " ".join(HOSTS) + "\n")
    os.chmod(hosts, 0o644)
    spec.setdefault("volumes", []).append({"name": "etc-hosts", "hostPath": {"path": hosts, "type": "File"}})
    for c in spec["containers"]:
        c.setdefault("volumeMounts", []).append({"name": "etc-hosts", "mountPath": "/etc/hosts", "readOnly": True})
    rewrite("hostAliases -> also a hosts file mounted read-only at /etc/hosts (podman 4.3 drops hostAliases on the host network)")


def strip_probes(c, what):
    for p in ("startupProbe", "livenessProbe", "readinessProbe"):
        if p in c:
            kind = next(k for k in ("httpGet", "exec", "tcpSocket") if k in c[p])
            c.pop(p)
            rewrite(f"{what}: {p} ({kind}) -> checked by scripts/k8s-play from the host (podman 4.3 turns probes into healthchecks run with curl/nc inside the image, which has neither, and needs systemd timers)")
    if "lifecycle" in c:
        c.pop("lifecycle")
        rewrite(f"{what}: lifecycle.preStop -> removed (podman kube play does not run hooks)")


def expand_args(spec, docs, pod_name, what):
    """Kubernetes expands $(VAR) in command and args from the container's env; podman 4.3 passes
    them on literally (shown: args ["in=$(X)"] printed in=$(X)). Expanded here from the same env:
    values, ConfigMap and Secret keys, the pod's name."""
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    for c in spec["containers"]:
        env = {}
        for e in c.get("env", []):
            ref = e.get("valueFrom", {})
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "configMapKeyRef" in ref:
                env[e["name"]] = configmaps[ref["configMapKeyRef"]["name"]][ref["configMapKeyRef"]["key"]]
            elif ref.get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[e["name"]] = pod_name
        for field in ("command", "args"):
            for i, a in enumerate(c.get(field, [])):
                new = a
                for k, v in env.items():
                    new = new.replace(f"$({k})", v)
                if new != a:
                    c[field][i] = new
                    rewrite(f"{what}: {field} {a} -> expanded from the container's env (podman 4.3 does not expand $(VAR))")


def empty_dirs(spec, pod_name, what):
    """emptyDir -> a directory of this pod's own (hostPath under OUT/emptydir/POD/), world-writable
    and owned by the fsGroup as the kubelet makes it. podman 4.3 makes one named volume per emptyDir
    *name* and shares it between every pod that uses the name (seen: volume "tmp" in use by five
    containers of five pods), where Kubernetes gives each pod its own, empty at the pod's start."""
    group = spec.get("securityContext", {}).get("fsGroup", 0)
    for v in spec.get("volumes", []):
        if "emptyDir" in v:
            d = os.path.join(OUT, "emptydir", pod_name, v["name"])
            os.makedirs(d, exist_ok=True)
            os.chown(d, 0, group)
            os.chmod(d, 0o2777)
            limit = v["emptyDir"].get("sizeLimit")
            v.pop("emptyDir")
            v["hostPath"] = {"path": d, "type": "Directory"}
            rewrite(f"{what}: emptyDir {v['name']} -> a directory per pod (hostPath, root:{group} mode 2777{', sizeLimit ' + limit + ' not enforced' if limit else ''}): podman 4.3 shares one volume per emptyDir name between pods")


def drop_ports(c, what):
    if c.pop("ports", None):
        rewrite(f"{what}: ports -> removed (podman refuses port mappings on the host network; the pod listens on its own ports)")


def pod_from_template(name, template, kind_name, labels_extra=None):
    spec = copy.deepcopy(template["spec"])
    for k in ("affinity", "topologySpreadConstraints", "serviceAccountName"):
        if k in spec:
            spec.pop(k)
            rewrite(f"{kind_name}: spec.{k} -> dropped (one node, no API server)")
    spec.setdefault("restartPolicy", "Always")
    meta = {"name": name, "namespace": "sluice", "labels": dict(template["metadata"].get("labels", {}))}
    if labels_extra:
        meta["labels"].update(labels_extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def set_arg(args, flag, value):
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            old = a
            args[i] = f"{flag}={value}"
            return old
    raise SystemExit(f"rewrite.py: no {flag} in {args}")


def prepare(rendered, out, base):
    docs = load(rendered)
    P = ports(base)
    # ConfigMaps: as rendered (their kustomize hash names too), given to every play (--configmap).
    dump(os.path.join(out, "configmaps.yaml"), [d for d in docs if d["kind"] == "ConfigMap"])
    # The database Secret, with PostgreSQL's port on the host network.
    pg_secret = copy.deepcopy(find(docs, "Secret", "sluice-postgres"))
    url = base64.b64decode(pg_secret["data"]["url"]).decode()
    new_url = url.replace("sluice-postgres:5432", f"sluice-postgres:{P['postgres']}")
    rewrite(f"Secret sluice-postgres: url {url} -> {new_url} (each pod its own ports on the host network)")
    secret("sluice-postgres", {"url": new_url, "password": base64.b64decode(pg_secret["data"]["password"])})
    # cert-manager: the Issuers are a dev CA made with openssl; the Certificates become their Secrets.
    rewrite("cert-manager Issuers sluice-selfsigned, sluice-ca -> a dev CA made by openssl (ECDSA P-256)")
    coord_secret, _ = certificate_secret(docs, out, "sluice-coordinator")
    rewrite("Certificate sluice-coordinator -> Secret sluice-coordinator-tls from openssl with the Certificate's dnsNames, ipAddresses, uris, usages")
    op_secret, op_files = certificate_secret(docs, out, "sluice-operator")
    rewrite("Certificate sluice-operator -> Secret sluice-operator-tls (and files for `sluice status` from the host)")
    opdir = os.path.join(out, "operator")
    os.makedirs(opdir, exist_ok=True)
    for k, v in op_files.items():
        with open(os.path.join(opdir, k), "wb") as f:
            f.write(v)
    for d in docs:
        if d["kind"] in ("Service", "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ScaledObject",
                         "Namespace", "ServiceAccount"):
            rewrite(f"{d['kind']} {d['metadata']['name']} -> skipped (podman kube play has no {d['kind']})")

    # PostgreSQL: the StatefulSet's pod sluice-postgres-0 with its claim.
    sts = find(docs, "StatefulSet", "sluice-postgres")
    pod = pod_from_template("sluice-postgres-0", sts["spec"]["template"], "StatefulSet sluice-postgres")
    rewrite("StatefulSet sluice-postgres -> Pod sluice-postgres-0 and PersistentVolumeClaim data-sluice-postgres-0 (podman kube play has no StatefulSet)")
    spec = pod["spec"]
    c = spec["containers"][0]
    rewrite(f"StatefulSet sluice-postgres: image {c['image']} -> localhost/sluice-postgres:15 (Debian's postgresql-15 with a small entrypoint; no registry here)")
    c["image"] = "localhost/sluice-postgres:15"
    c["args"] = c["args"] + ["-c", f"port={P['postgres']}", "-c", "listen_addresses=127.0.0.1"]
    rewrite(f"StatefulSet sluice-postgres: args + -c port={P['postgres']} -c listen_addresses=127.0.0.1 (its own port on the host network, loopback only)")
    drop_ports(c, "StatefulSet sluice-postgres")
    strip_probes(c, "StatefulSet sluice-postgres")
    host_aliases(spec)
    claims = []
    for t in sts["spec"].get("volumeClaimTemplates", []):
        claim = f"{t['metadata']['name']}-sluice-postgres-0"
        claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim, "namespace": "sluice"},
                       "spec": t["spec"]})
        spec["volumes"].append({"name": t["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim}})
    resolve_secrets(spec, "StatefulSet sluice-postgres")
    empty_dirs(spec, "sluice-postgres-0", "StatefulSet sluice-postgres")
    expand_args(spec, docs, "sluice-postgres-0", "StatefulSet sluice-postgres")
    dump(os.path.join(out, "postgres.yaml"), claims + [pod])

    # The coordinator: two replicas (the base's; the dev overlay has one), each its own ports.
    dep = find(docs, "Deployment", "sluice-coordinator")
    if dep["spec"].get("replicas", 1) != 2:
        rewrite(f"Deployment sluice-coordinator: replicas {dep['spec'].get('replicas')} -> 2 (the base's: leader election between two)")
    grpc = ",".join(f"sluice-coordinator:{p}" for p in P["coordinator_grpc"])
    for i in range(2):
        name = f"sluice-coordinator-{i}"
        pod = pod_from_template(name, dep["spec"]["template"], "Deployment sluice-coordinator")
        spec = pod["spec"]
        c = spec["containers"][0]
        old = set_arg(c["args"], "--listen", f"127.0.0.1:{P['coordinator_grpc'][i]}")
        rewrite(f"{name}: {old} -> --listen=127.0.0.1:{P['coordinator_grpc'][i]} (host network: its own port, loopback only)")
        old = set_arg(c["args"], "--metrics", f"127.0.0.1:{P['coordinator_metrics'][i]}")
        rewrite(f"{name}: {old} -> --metrics=127.0.0.1:{P['coordinator_metrics'][i]}")
        drop_ports(c, "Deployment sluice-coordinator")
        strip_probes(c, "Deployment sluice-coordinator")
        host_aliases(spec)
        resolve_secrets(spec, "Deployment sluice-coordinator")
        empty_dirs(spec, name, "Deployment sluice-coordinator")
        expand_args(spec, docs, name, "Deployment sluice-coordinator")
        dump(os.path.join(out, f"{name}.yaml"), [pod])
    with open(os.path.join(out, "ports.env"), "w") as f:
        f.write(f"PG_PORT={P['postgres']}\nCOORD_GRPC='{' '.join(map(str, P['coordinator_grpc']))}'\n"
                f"COORD_METRICS='{' '.join(map(str, P['coordinator_metrics']))}'\nCOORDINATORS={grpc}\n")


def worker(rendered, out, base, name, index):
    docs = load(rendered)
    P = ports(base)
    dep = find(docs, "Deployment", "sluice-worker")
    rewrite("Deployment sluice-worker -> one Pod per replica, played and removed one at a time (playing a Deployment again recreates all its pods)")
    pod = pod_from_template(name, dep["spec"]["template"], "Deployment sluice-worker")
    spec = pod["spec"]
    c = spec["containers"][0]
    grpc = ",".join(f"sluice-coordinator:{p}" for p in P["coordinator_grpc"])
    old = set_arg(c["args"], "--coordinator", grpc)
    rewrite(f"Deployment sluice-worker: {old} -> --coordinator={grpc} (no Service picks the leader: both coordinators, tried in turn)")
    port = P["worker_metrics"](int(index))
    old = set_arg(c["args"], "--metrics", f"127.0.0.1:{port}")
    rewrite(f"Deployment sluice-worker: {old} -> a loopback port per pod ({name}: 127.0.0.1:{port})")
    drop_ports(c, "Deployment sluice-worker")
    strip_probes(c, "Deployment sluice-worker")
    host_aliases(spec)
    # The csi-driver volume -> a Secret issued with the volume's attributes, ${POD_NAME} = the pod.
    for v in spec["volumes"]:
        if "csi" in v:
            a = v["csi"]["volumeAttributes"]
            sub = lambda s: s.replace("${POD_NAME}", name)
            files = issue(out, name, sub(a.get("csi.cert-manager.io/common-name", name)),
                          uris=[sub(u) for u in a.get("csi.cert-manager.io/uri-sans", "").split(",") if u],
                          usages=[u.strip() for u in a.get("csi.cert-manager.io/key-usages", "").split(",")])
            secret_name = f"{name}-tls"
            v.pop("csi")
            v["secret"] = {"secretName": secret_name, "defaultMode": 0o440}
            rewrite("Deployment sluice-worker: csi.cert-manager.io volume -> a Secret per pod (<pod>-tls) issued by openssl with the volume's uri-sans and key-usages, ${POD_NAME} = the pod's name")
    secret(secret_name, files)
    resolve_secrets(spec, "Deployment sluice-worker")
    empty_dirs(spec, name, "Deployment sluice-worker")
    expand_args(spec, docs, name, "Deployment sluice-worker")
    dump(os.path.join(out, f"{name}.yaml"), [pod])


def verify(rendered, out, base, job_path):
    docs = load(rendered)
    job = load(job_path)[0]
    # The ConfigMap and Secret names kustomize gave the overlay's (hash suffixes).
    names = {d["metadata"]["name"].rsplit("-", 1)[0]: d["metadata"]["name"] for d in docs if d["kind"] in ("ConfigMap", "Secret")}
    pod = pod_from_template("sluice-verify", job["spec"]["template"], "Job sluice-verify")
    rewrite("Job sluice-verify (chaos/k8s/workload) -> a Pod with restartPolicy Never, started when every partition finished (podman has no Job)")
    spec = pod["spec"]
    spec["restartPolicy"] = "Never"
    c = spec["containers"][0]
    c["image"] = os.environ.get("SLUICE_PLAY_IMAGE") or (c["image"] if ":" in c["image"] else c["image"] + ":dev")
    for e in c.get("env", []):
        ref = e.get("valueFrom", {})
        for k in ("configMapKeyRef", "secretKeyRef"):
            if k in ref and ref[k]["name"] in names:
                ref[k]["name"] = names[ref[k]["name"]]
    for v in spec["volumes"]:
        if "configMap" in v and v["configMap"]["name"] in names:
            v["configMap"]["name"] = names[v["configMap"]["name"]]
    host_aliases(spec)
    resolve_secrets(spec, "Job sluice-verify")
    empty_dirs(spec, "sluice-verify", "Job sluice-verify")
    expand_args(spec, docs, "sluice-verify", "Job sluice-verify")
    dump(os.path.join(out, "sluice-verify.yaml"), [pod])


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    OUT = rest[1]
    {"prepare": prepare, "worker": worker, "verify": verify}[cmd](*rest)
