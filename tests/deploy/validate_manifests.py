#!/usr/bin/python3
"""Renders every kustomization under deploy/ and checks what it would deploy.

For each directory holding a kustomization.yaml:
  1. `kubectl kustomize DIR` renders it (offline);
  2. every object validates against the Kubernetes v1.34 JSON schema of its
     kind (tests/data/k8s-schemas), with unknown fields rejected: the schemas
     get `additionalProperties: false` on every object that lists properties;
  3. the objects agree with each other and with the real relu-server binary:
     environment variable names and values, ports, probe service names (asked
     of a running relu-server started with the rendered configuration),
     selectors, the drain budget and the security settings the issue asks for.

Exit status: 0 all good, 1 a check failed, 77 kubectl is not installed
(ctest reports the test as skipped).
"""

import argparse
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import grpc
import jsonschema
import yaml

SKIP = 77

# (apiVersion, kind) -> schema file in the schema directory.
SCHEMAS = {
    ("apps/v1", "Deployment"): "deployment-apps-v1.json",
    ("v1", "Service"): "service-v1.json",
    ("autoscaling/v2", "HorizontalPodAutoscaler"):
        "horizontalpodautoscaler-autoscaling-v2.json",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudget-policy-v1.json",
    ("v1", "ConfigMap"): "configmap-v1.json",
    ("v1", "ServiceAccount"): "serviceaccount-v1.json",
    ("networking.k8s.io/v1", "NetworkPolicy"):
        "networkpolicy-networking-v1.json",
}

SERVING = 1  # grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING


class Checker:
    """Collects failures instead of stopping at the first one."""

    def __init__(self):
        self.failures = []

    def check(self, condition, message):
        if not condition:
            self.failures.append(message)
        return condition


def strict(schema):
    """A copy of `schema` where objects with properties reject unknown keys."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def load_validators(schema_dir):
    validators = {}
    for key, name in SCHEMAS.items():
        with open(os.path.join(schema_dir, name)) as f:
            schema = strict(json.load(f))
        validators[key] = jsonschema.Draft7Validator(schema)
    return validators


def schema_errors(validators, obj):
    """Schema violations of one object, as strings; [] if valid."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key not in validators:
        return [f"no schema for {key[0]} {key[1]}: add it to tests/data/k8s-schemas"]
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validators[key].iter_errors(obj)
    ]


def parse_help(server):
    """Flags of relu-server --help: {env name: (flag, default or None)}."""
    out = subprocess.run([server, "--help"], capture_output=True, text=True,
                         check=True).stdout
    flags = {}
    # CLI11: "  --max-queue-requests UINT:UINT in [1 - 16777216]=1024 (Env:...)"
    pattern = re.compile(r"^\s+--([a-z0-9-]+) (.*?) \(Env:(RELU_[A-Z0-9_]+)\)$",
                         re.M)
    for match in pattern.finditer(out):
        kind = match.group(2)
        default = kind.split("=", 1)[1] if "=" in kind else None
        flags[match.group(3)] = (match.group(1), default)
    return flags


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def memory_bytes(quantity):
    """A Kubernetes memory quantity ("1Gi", "512Mi", "1G", "1000") in bytes."""
    if quantity is None:
        return None
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    for suffix in sorted(units, key=len, reverse=True):
        if str(quantity).endswith(suffix):
            return int(float(str(quantity)[:-len(suffix)]) * units[suffix])
    return int(float(quantity))


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def health_check(target, service):
    """grpc.health.v1.Health/Check for `service`; the status number or None.

    The two messages are encoded by hand (field 1 of each) so that no
    generated code is needed.
    """
    name = service.encode()
    request = b"\x0a" + bytes([len(name)]) + name if name else b""
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary("/grpc.health.v1.Health/Check",
                                   request_serializer=lambda m: m,
                                   response_deserializer=lambda m: m)
        try:
            response = call(request, timeout=10)
        except grpc.RpcError as e:
            return f"{e.code().name}: {e.details()}"
    if response == b"":
        return 0  # UNKNOWN is the default value, hence absent
    if len(response) == 2 and response[0] == 0x08:
        return response[1]
    return f"undecodable response {response!r}"


def run_server_with(server, config, probe_services, checker, where):
    """Starts relu-server with `config` as its environment (addresses moved
    to loopback port 0), asks it each probe's health service, stops it with
    SIGTERM. Checks that it starts, serves each name, and exits 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELU_")}
    env.update(config)
    env["RELU_GRPC_ADDRESS"] = "127.0.0.1:0"
    env["RELU_METRICS_ADDRESS"] = "127.0.0.1:0"
    env["RELU_HTTP_ADDRESS"] = "127.0.0.1:0"
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen([server], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        target = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            log.seek(0)
            match = re.search(r"gRPC listening on \S*:(\d+)", log.read())
            if match:
                target = f"127.0.0.1:{match.group(1)}"
                break
            time.sleep(0.05)
        if not checker.check(target is not None,
                             f"{where}: relu-server did not start with the "
                             f"rendered configuration {config}"):
            process.kill()
            process.wait()
            log.seek(0)
            print(log.read(), file=sys.stderr)
            return
        for service in sorted(probe_services):
            status = health_check(target, service)
            checker.check(status == SERVING,
                          f"{where}: probe health service {service!r}: "
                          f"relu-server answers {status}, not SERVING")
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        checker.check(code == 0, f"{where}: relu-server exited {code} "
                                 f"after SIGTERM, not 0")


def check_objects(objects, flags, server, checker, where):
    """The cross-object and against-the-binary checks of one rendering."""
    kinds = {o["kind"] for o in objects}
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler",
                 "PodDisruptionBudget", "ServiceAccount", "NetworkPolicy",
                 "ConfigMap"):
        checker.check(kind in kinds, f"{where}: no {kind}")
    deployments = by_kind(objects, "Deployment")
    if not checker.check(len(deployments) == 1,
                         f"{where}: {len(deployments)} Deployments, want 1"):
        return
    deployment = deployments[0]
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"].get("labels", {})
    spec = pod["spec"]
    checker.check(
        matches(deployment["spec"]["selector"].get("matchLabels"), pod_labels),
        f"{where}: the Deployment's selector does not select its pods")
    containers = [c for c in spec["containers"] if c["name"] == "relu-server"]
    if not checker.check(len(containers) == 1,
                         f"{where}: no container named relu-server"):
        return
    container = containers[0]

    # Configuration: ConfigMaps through envFrom plus env, all RELU_* names
    # relu-server knows.
    config_maps = {o["metadata"]["name"]: o for o in by_kind(objects, "ConfigMap")}
    config = {}
    for source in container.get("envFrom", []):
        checker.check("configMapRef" in source,
                      f"{where}: envFrom {source} is not a ConfigMap")
        name = source.get("configMapRef", {}).get("name")
        if checker.check(name in config_maps,
                         f"{where}: envFrom names ConfigMap {name}, "
                         f"not in the rendering"):
            config.update(config_maps[name].get("data", {}))
    for var in container.get("env", []):
        checker.check("value" in var, f"{where}: env {var['name']} has no "
                                      f"literal value")
        config[var["name"]] = var.get("value", "")
    checker.check(config, f"{where}: the container gets no RELU_* configuration")
    for name in config:
        checker.check(name in flags,
                      f"{where}: {name} is not an environment variable of "
                      f"relu-server (--help lists {sorted(flags)})")

    def setting(env):
        if env in config:
            return config[env]
        return flags.get(env, (None, None))[1]

    checker.check(int(config.get("RELU_MAX_CONNECTION_AGE_S", "0")) > 0,
                  f"{where}: RELU_MAX_CONNECTION_AGE_S is not set above 0")

    # Memory: the server's budget is the container's limit (or
    # RELU_MEMORY_LIMIT_BYTES, never above it); 3/8 of it holds requests,
    # 3/8 responses (server/service/resource_limits.h). A largest message
    # and the queued tensors must fit the requests' share.
    limit = memory_bytes(container.get("resources", {}).get("limits", {})
                         .get("memory"))
    if checker.check(limit, f"{where}: the container has no memory limit"):
        budget = int(setting("RELU_MEMORY_LIMIT_BYTES") or 0) or limit
        checker.check(budget <= limit,
                      f"{where}: RELU_MEMORY_LIMIT_BYTES {budget} is above "
                      f"the container's memory limit {limit}")
        share = budget // 8 * 3
        for name in ("RELU_MAX_MESSAGE_BYTES", "RELU_MAX_QUEUE_BYTES"):
            value = int(setting(name))
            checker.check(value <= share,
                          f"{where}: {name} {value} does not fit the requests' "
                          f"share of memory, 3/8 x {budget} = {share}")

    # Ports: the listen addresses, the named container ports, the probes,
    # the scrape annotation, the Services and the NetworkPolicy agree.
    grpc_port = port_of(setting("RELU_GRPC_ADDRESS"))
    metrics_port = port_of(setting("RELU_METRICS_ADDRESS"))
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    checker.check(ports.get("grpc") == grpc_port,
                  f"{where}: container port grpc {ports.get('grpc')} != "
                  f"the server's gRPC port {grpc_port}")
    checker.check(ports.get("metrics") == metrics_port,
                  f"{where}: container port metrics {ports.get('metrics')} != "
                  f"the server's metrics port {metrics_port}")
    annotations = pod["metadata"].get("annotations", {})
    checker.check(annotations.get("prometheus.io/scrape") == "true",
                  f"{where}: no prometheus.io/scrape annotation")
    checker.check(annotations.get("prometheus.io/port") == str(metrics_port),
                  f"{where}: prometheus.io/port is not {metrics_port}")
    checker.check(annotations.get("prometheus.io/path") == "/metrics",
                  f"{where}: prometheus.io/path is not /metrics")

    probe_services = set()
    for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(probe_name)
        if not checker.check(probe and "grpc" in probe,
                             f"{where}: {probe_name} is not a native gRPC probe"):
            continue
        checker.check(probe["grpc"]["port"] == grpc_port,
                      f"{where}: {probe_name} port {probe['grpc']['port']} != "
                      f"{grpc_port}")
        probe_services.add(probe["grpc"].get("service", ""))

    # Shutdown: the grace period outlasts the preStop pause plus the drain.
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    pause_s = 0
    if "sleep" in pre_stop:
        pause_s = int(pre_stop["sleep"]["seconds"])
    elif "exec" in pre_stop:
        command = pre_stop["exec"]["command"]
        if checker.check(len(command) == 2 and command[0].endswith("/sleep"),
                         f"{where}: preStop {command} is not a sleep"):
            pause_s = int(command[1])
    checker.check(pause_s > 0, f"{where}: no preStop pause")
    drain_s = int(setting("RELU_DRAIN_TIMEOUT_S"))
    grace_s = spec.get("terminationGracePeriodSeconds", 30)
    checker.check(grace_s > pause_s + drain_s,
                  f"{where}: terminationGracePeriodSeconds {grace_s} <= preStop "
                  f"{pause_s} + drain timeout {drain_s}")
    liveness = container.get("livenessProbe", {})
    checker.check(
        liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
        > drain_s,
        f"{where}: the liveness probe can fail within the {drain_s} s drain "
        f"(it reports NOT_SERVING) and kill the pod")

    # Security and resources.
    pod_security = spec.get("securityContext", {})
    security = container.get("securityContext", {})
    checker.check(security.get("runAsNonRoot") or pod_security.get("runAsNonRoot"),
                  f"{where}: runAsNonRoot is not set")
    checker.check(security.get("readOnlyRootFilesystem") is True,
                  f"{where}: readOnlyRootFilesystem is not true")
    checker.check(security.get("allowPrivilegeEscalation") is False,
                  f"{where}: allowPrivilegeEscalation is not false")
    checker.check("ALL" in security.get("capabilities", {}).get("drop", []),
                  f"{where}: capabilities are not all dropped")
    resources = container.get("resources", {})
    for part in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            checker.check(resource in resources.get(part, {}),
                          f"{where}: no {resource} {part}")

    # The ServiceAccount, Services, HPA, PDB and NetworkPolicy point at it.
    accounts = {o["metadata"]["name"] for o in by_kind(objects, "ServiceAccount")}
    checker.check(spec.get("serviceAccountName") in accounts,
                  f"{where}: serviceAccountName {spec.get('serviceAccountName')} "
                  f"is not in the rendering")
    services = {o["metadata"]["name"]: o for o in by_kind(objects, "Service")}
    for name, headless in (("relu", False), ("relu-headless", True)):
        service = services.get(name)
        if not checker.check(service, f"{where}: no Service {name}"):
            continue
        service_spec = service["spec"]
        checker.check((service_spec.get("clusterIP") == "None") == headless,
                      f"{where}: Service {name} headless should be {headless}")
        checker.check(service_spec.get("type", "ClusterIP") == "ClusterIP",
                      f"{where}: Service {name} is not ClusterIP")
        checker.check(matches(service_spec.get("selector"), pod_labels),
                      f"{where}: Service {name} does not select the pods")
        service_ports = {p["name"]: p for p in service_spec["ports"]}
        grpc_entry = service_ports.get("grpc", {})
        checker.check(grpc_entry.get("port") == grpc_port,
                      f"{where}: Service {name} grpc port is not {grpc_port}")
        for port in service_spec["ports"]:
            target = port.get("targetPort", port["port"])
            resolved = ports.get(target) if isinstance(target, str) else target
            checker.check(resolved in ports.values(),
                          f"{where}: Service {name} targetPort {target} is "
                          f"not a container port")
    for hpa in by_kind(objects, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        checker.check(ref["kind"] == "Deployment" and
                      ref["name"] == deployment["metadata"]["name"],
                      f"{where}: the HPA scales {ref}, not the Deployment")
        resources = [m["resource"]["name"] for m in hpa["spec"].get("metrics", [])
                     if m["type"] == "Resource"]
        checker.check("cpu" in resources, f"{where}: the HPA does not use CPU")
        checker.check(hpa["spec"].get("minReplicas", 1) <= deployment["spec"]["replicas"]
                      <= hpa["spec"]["maxReplicas"],
                      f"{where}: Deployment replicas outside the HPA's range")
    for pdb in by_kind(objects, "PodDisruptionBudget"):
        checker.check(matches(pdb["spec"]["selector"].get("matchLabels"), pod_labels),
                      f"{where}: the PodDisruptionBudget does not select the pods")
    for policy in by_kind(objects, "NetworkPolicy"):
        checker.check(matches(policy["spec"]["podSelector"].get("matchLabels"),
                              pod_labels),
                      f"{where}: the NetworkPolicy does not select the pods")
        allowed = set()
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                allowed.add(ports.get(port["port"], port["port"]))
        checker.check(grpc_port in allowed,
                      f"{where}: the NetworkPolicy does not admit gRPC")
        checker.check(metrics_port in allowed,
                      f"{where}: the NetworkPolicy does not admit scrapes")

    run_server_with(server, config, probe_services, checker, where)


def kustomization_kind(directory):
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        return (yaml.safe_load(f) or {}).get("kind", "Kustomization")


def adapter_rules(deploy_dir):
    """The Prometheus adapter's custom rules shipped under deploy/
    (prometheus-adapter-rules.yaml files), by the metric name they expose."""
    rules = {}
    for root, _, files in os.walk(deploy_dir):
        if "prometheus-adapter-rules.yaml" in files:
            with open(os.path.join(root, "prometheus-adapter-rules.yaml")) as f:
                values = yaml.safe_load(f)
            for rule in values["rules"]["custom"]:
                rules[rule["name"]["as"]] = rule
    return rules


# relu-server's gauges: rate() of one is a mistake.
GAUGES = ("relu_inflight_requests", "relu_queue_requests", "relu_queue_bytes")


def check_pods_metrics(objects, rules, checker, where):
    """Every Pods metric an HPA scales on is served by an adapter rule that
    maps the pod and namespace labels and rates only counters."""
    for hpa in by_kind(objects, "HorizontalPodAutoscaler"):
        for metric in hpa["spec"].get("metrics", []):
            if metric["type"] != "Pods":
                continue
            name = metric["pods"]["metric"]["name"]
            rule = rules.get(name)
            if not checker.check(rule is not None,
                                 f"{where}: the HPA scales on {name}, which no "
                                 f"prometheus-adapter-rules.yaml provides"):
                continue
            overrides = rule["resources"]["overrides"]
            checker.check(overrides.get("pod", {}).get("resource") == "pod" and
                          overrides.get("namespace", {}).get("resource") ==
                          "namespace",
                          f"{where}: rule {name} does not map pod and namespace")
            series = re.match(r"\s*(\w+)", rule["seriesQuery"]).group(1)
            query = rule["metricsQuery"]
            checker.check("<<.LabelMatchers>>" in query and
                          "<<.GroupBy>>" in query,
                          f"{where}: rule {name} ignores the HPA's selection")
            if "rate(" in query:
                checker.check(series not in GAUGES and
                              re.search(r"_(total|sum|count)$", series),
                              f"{where}: rule {name} takes rate() of {series}, "
                              f"not a counter")
            checker.check(metric["pods"]["target"]["type"] == "AverageValue",
                          f"{where}: {name} is not targeted per pod")


def self_test(validators, objects, checker):
    """The strict schemas must reject what Kubernetes would reject."""
    deployment = copy.deepcopy(by_kind(objects, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    checker.check(schema_errors(validators, deployment),
                  "self-test: a misspelt container field (livenesProbe) passed "
                  "the schema")
    deployment = copy.deepcopy(by_kind(objects, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"][
        "grpc"]["port"] = "grpc"
    checker.check(schema_errors(validators, deployment),
                  "self-test: a named gRPC probe port passed the schema")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deploy-dir", required=True)
    parser.add_argument("--schema-dir", required=True)
    parser.add_argument("--server", required=True, help="relu-server binary")
    parser.add_argument("--kubectl", default="kubectl")
    args = parser.parse_args()

    kubectl = shutil.which(args.kubectl)
    if kubectl is None:
        print(f"SKIPPED: {args.kubectl} not found; cannot render kustomizations")
        return SKIP

    flags = parse_help(args.server)
    checker = Checker()
    checker.check(len(flags) >= 10 and "RELU_GRPC_ADDRESS" in flags,
                  f"could not read the flags of {args.server} --help: {flags}")
    validators = load_validators(args.schema_dir)

    # Components (kind: Component) render only inside an overlay that uses
    # them; the overlays are checked.
    directories = sorted(
        root for root, _, files in os.walk(args.deploy_dir)
        if "kustomization.yaml" in files and
        kustomization_kind(root) != "Component")
    checker.check(directories, f"no kustomization.yaml under {args.deploy_dir}")
    rules = adapter_rules(args.deploy_dir)
    for directory in directories:
        where = os.path.relpath(directory, os.path.dirname(args.deploy_dir))
        rendered = subprocess.run([kubectl, "kustomize", directory],
                                  capture_output=True, text=True)
        if not checker.check(rendered.returncode == 0,
                             f"{where}: kubectl kustomize failed: "
                             f"{rendered.stderr}"):
            continue
        objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]
        before = len(checker.failures)
        for obj in objects:
            name = f"{where}: {obj.get('kind')} {obj['metadata'].get('name')}"
            for error in schema_errors(validators, obj):
                checker.failures.append(f"{name}: {error}")
        check_objects(objects, flags, args.server, checker, where)
        check_pods_metrics(objects, rules, checker, where)
        if by_kind(objects, "Deployment"):
            self_test(validators, objects, checker)
        print(f"{where}: {len(objects)} objects "
              f"({', '.join(sorted(o['kind'] for o in objects))}): "
              f"{'ok' if len(checker.failures) == before else 'FAILED'}")

    for failure in checker.failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main())
