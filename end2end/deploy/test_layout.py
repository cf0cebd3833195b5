"""What can be checked of the deployment without a container engine.

- deploy/kubernetes: every manifest parses; the Deployment runs 2 replicas
  with probes on /readyz and /healthz, resource requests and limits, and
  every container sets runAsNonRoot, readOnlyRootFilesystem, no privilege
  escalation, all capabilities dropped and seccomp RuntimeDefault; the
  Secret, Service, PodDisruptionBudget and NetworkPolicy are there.
- Dockerfile: the runtime stage runs as a non-root user and checks health
  with `gatehouse healthcheck`; its COPY lines, read from the file, assemble
  the image's layout in a temporary directory, and the server started there
  with the stage's ENV (and nothing from this checkout) serves the hashed,
  brotli-compressed bundle and passes its own health check.

The binary the tests built (GATEHOUSE_BIN, default target/debug/gatehouse)
stands in for target/release/gatehouse, and the release browser bundle the
test command built (GATEHOUSE_RELEASE_SITE) for target/site; every other
path is the Dockerfile's own.
"""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MANIFESTS = os.path.join(ROOT, "deploy", "kubernetes")


def manifests():
    docs = []
    for path in sorted(glob.glob(os.path.join(MANIFESTS, "*.yaml"))):
        with open(path) as f:
            docs.extend((os.path.basename(path), d) for d in yaml.safe_load_all(f) if d)
    return docs


def of_kind(kind):
    return [d for _, d in manifests() if d.get("kind") == kind]


class Manifests(unittest.TestCase):
    def test_every_manifest_parses_and_kustomize_lists_them(self):
        docs = manifests()
        self.assertGreaterEqual(len(docs), 7)
        for name, d in docs:
            self.assertIn("kind", d, name)
            self.assertIn("apiVersion", d, name)
        kustomization = of_kind("Kustomization")[0]
        files = {os.path.basename(p) for p in glob.glob(os.path.join(MANIFESTS, "*.yaml"))}
        self.assertEqual(set(kustomization["resources"]), files - {"kustomization.yaml"})

    def test_deployment_runs_two_hardened_replicas(self):
        (dep,) = of_kind("Deployment")
        self.assertGreaterEqual(dep["spec"]["replicas"], 2)
        pod = dep["spec"]["template"]["spec"]
        pod_sc = pod.get("securityContext", {})
        self.assertIs(pod.get("automountServiceAccountToken"), False)
        containers = pod["containers"] + pod.get("initContainers", [])
        self.assertTrue(containers)
        for c in containers:
            sc = c.get("securityContext", {})
            name = c["name"]
            self.assertIs(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")), True, name)
            self.assertIs(sc.get("readOnlyRootFilesystem"), True, name)
            self.assertIs(sc.get("allowPrivilegeEscalation"), False, name)
            self.assertIn("ALL", sc.get("capabilities", {}).get("drop", []), name)
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            self.assertEqual(seccomp.get("type"), "RuntimeDefault", name)
            for kind in ("requests", "limits"):
                self.assertIn("cpu", c["resources"][kind], name)
                self.assertIn("memory", c["resources"][kind], name)
        app = pod["containers"][0]
        self.assertEqual(app["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertEqual(app["livenessProbe"]["httpGet"]["path"], "/healthz")
        secret_refs = [e["secretRef"]["name"] for e in app.get("envFrom", []) if "secretRef" in e]
        (secret,) = of_kind("Secret")
        self.assertEqual(secret_refs, [secret["metadata"]["name"]])
        self.assertEqual(set(secret["stringData"]), {"GATEHOUSE_DATABASE_URL", "GATEHOUSE_MASTER_KEY"})
        env = {e["name"]: e.get("value") for e in app["env"]}
        self.assertNotIn("GATEHOUSE_MASTER_KEY", env, "the master key belongs in the Secret")
        # Metrics on their own port, never the public one.
        self.assertNotEqual(env["GATEHOUSE_METRICS_LISTEN"].split(":")[-1], env["GATEHOUSE_LISTEN"].split(":")[-1])

    def test_service_budget_and_network_policy(self):
        (dep,) = of_kind("Deployment")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        for kind in ("Service", "PodDisruptionBudget"):
            (d,) = of_kind(kind)
            selector = d["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            self.assertTrue(selector.items() <= labels.items(), kind)
        (pdb,) = of_kind("PodDisruptionBudget")
        self.assertLess(pdb["spec"]["minAvailable"], dep["spec"]["replicas"])
        (np,) = of_kind("NetworkPolicy")
        self.assertEqual(set(np["spec"]["policyTypes"]), {"Ingress", "Egress"})
        ingress_ports = {p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]}
        self.assertEqual(ingress_ports, {3000, 9100})
        egress = np["spec"]["egress"]
        self.assertIn(53, {p["port"] for rule in egress for p in rule["ports"]})
        for rule in egress:
            for to in rule["to"]:
                self.assertNotIn("0.0.0.0/0", str(to), "egress must name its ranges")


def runtime_stage():
    """The last stage of the Dockerfile: its instructions, continuation lines joined."""
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = re.sub(r"\\\n\s*", " ", f.read())
    stages, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            current = []
            stages.append(current)
        if current is not None:
            current.append((word.upper(), rest.strip()))
    return stages[-1]


def files(root):
    """Every file and directory under root, relative to it."""
    found = set()
    for d, dirs, fs in os.walk(root):
        found.update(os.path.relpath(os.path.join(d, n), root) for n in dirs + fs)
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Image(unittest.TestCase):
    def test_runtime_stage_is_non_root_with_a_health_check(self):
        stage = runtime_stage()
        users = [rest for word, rest in stage if word == "USER"]
        self.assertTrue(users)
        self.assertNotIn(users[-1].split(":")[0], ("0", "root"))
        (health,) = [rest for word, rest in stage if word == "HEALTHCHECK"]
        self.assertIn('"healthcheck"', health)

    def test_the_layout_from_the_copy_lines_starts_and_serves(self):
        stand_ins = {
            "/src/target/release/gatehouse": os.environ.get("GATEHOUSE_BIN", os.path.join(ROOT, "target/debug/gatehouse")),
            "/src/target/site": os.environ.get("GATEHOUSE_RELEASE_SITE", os.path.join(ROOT, "target/site-release")),
            # Made by the build stage's `mkdir -p`.
            "/src/target/empty-data": tempfile.mkdtemp(prefix="gatehouse-empty-"),
        }
        stage = runtime_stage()
        image = tempfile.mkdtemp(prefix="gatehouse-image-")
        self.addCleanup(shutil.rmtree, image, True)
        copies = [rest.split() for word, rest in stage if word == "COPY"]
        self.assertGreaterEqual(len(copies), 3)
        for parts in copies:
            self.assertTrue(parts[0].startswith("--from="), parts)
            src, dst = [p for p in parts if not p.startswith("--")]
            local = stand_ins.get(src) or os.path.join(ROOT, src.removeprefix("/src/"))
            self.assertTrue(os.path.exists(local), f"{src}: {local} is missing (build it first)")
            target = os.path.join(image, dst.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.isdir(local):
                shutil.copytree(local, target)
            else:
                shutil.copy2(local, target)

        env = {"PATH": "/usr/bin:/bin", "RUST_LOG": "warn"}
        for word, rest in stage:
            if word == "ENV":
                for key, value in re.findall(r"(\w+)=(\S+)", rest):
                    # Paths in the image live under the temporary root here.
                    if value.startswith("/"):
                        value = os.path.join(image, value.lstrip("/"))
                    elif value.startswith("sqlite:///"):
                        value = "sqlite://" + os.path.join(image, value.removeprefix("sqlite:///"))
                    env[key] = value
        port = free_port()
        env["GATEHOUSE_LISTEN"] = f"127.0.0.1:{port}"
        (entry,) = [rest for word, rest in stage if word == "ENTRYPOINT"]
        binary = os.path.join(image, yaml.safe_load(entry)[0].lstrip("/"))
        (workdir,) = [rest for word, rest in stage if word == "WORKDIR"]
        cwd = os.path.join(image, workdir.lstrip("/"))

        before = files(image)
        server = subprocess.Popen([binary, "serve"], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(server.kill)
        deadline = time.time() + 30
        while "Gatehouse is running" not in server.stdout.readline():
            self.assertLess(time.time(), deadline, "the server did not start")
            if server.poll() is not None:
                self.fail(f"the server exited: {server.stderr.read()}")

        base = f"http://127.0.0.1:{port}"
        with open(os.path.join(image, "app", "hash.txt")) as f:
            hashes = dict(line.split(": ") for line in f.read().split("\n") if line)
        page = urllib.request.urlopen(f"{base}/signin").read().decode()
        wasm = f"/pkg/gatehouse.{hashes['wasm']}.wasm"
        self.assertIn(wasm, page)
        # The wasm is revalidated (its content names the loader of the lazy
        # screens, written after it was named); the loader is cached for good.
        loader = f"/pkg/__wasm_split.{hashes['split']}.js"
        for path, cache in [(wasm, "no-cache"), (loader, "public, max-age=31536000, immutable")]:
            req = urllib.request.Request(base + path, headers={"Accept-Encoding": "br"})
            with urllib.request.urlopen(req) as r:
                self.assertEqual(r.headers["Content-Encoding"], "br", path)
                self.assertEqual(r.headers["Cache-Control"], cache, path)

        check = subprocess.run([binary, "healthcheck"], env=env, cwd=cwd, capture_output=True, text=True, timeout=10)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertEqual(check.stdout.strip(), "healthy")

        # Nothing was written outside the data directory (the image's root
        # filesystem is read-only).
        outside = {f for f in files(image) - before if f != "data" and not f.startswith("data" + os.sep)}
        self.assertEqual(outside, set(), "files written outside /data")

        server.send_signal(signal.SIGTERM)
        self.assertEqual(server.wait(timeout=25), 0)
        check = subprocess.run([binary, "healthcheck"], env=env, cwd=cwd, capture_output=True, text=True, timeout=10)
        self.assertEqual(check.returncode, 1, "a stopped server is unhealthy")


if __name__ == "__main__":
    unittest.main()
