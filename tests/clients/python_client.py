"""The Python `kubernetes` client against a wasmkube cluster: the calls the API-compatibility
issue names, each checked to return a valid model. Prints one line per step; exits non-zero
on the first failure. Usage: python_client.py KUBECONFIG IMAGE"""

import sys
import time

from kubernetes import client, config, watch

kubeconfig, image = sys.argv[1], sys.argv[2]
config.load_kube_config(config_file=kubeconfig)
core, apps = client.CoreV1Api(), client.AppsV1Api()
namespace = "default"


def step(name, detail=""):
    print(f"ok {name} {detail}".rstrip(), flush=True)


def until(what, probe, limit=60):
    deadline = time.time() + limit
    while time.time() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


deployment = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="py-web", labels={"app": "py-web"}),
    spec=client.V1DeploymentSpec(
        replicas=1,
        selector=client.V1LabelSelector(match_labels={"app": "py-web"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "py-web"}),
            spec=client.V1PodSpec(
                containers=[
                    client.V1Container(
                        name="main",
                        image=image,
                        args=["print", "hello-python", "sleep", "600000"],
                    )
                ]
            ),
        ),
    ),
)
created = apps.create_namespaced_deployment(namespace, deployment)
assert isinstance(created, client.V1Deployment), type(created)
assert created.metadata.uid, "a uid"
step("create_namespaced_deployment", created.metadata.name)

stream = watch.Watch().stream(
    core.list_namespaced_pod, namespace, label_selector="app=py-web", timeout_seconds=60
)
running = None
for event in stream:
    pod = event["object"]
    assert isinstance(pod, client.V1Pod), type(pod)
    if pod.status and pod.status.phase == "Running":
        running = pod
        break
assert running is not None, "a pod Running within the watch"
step("watch.stream", running.metadata.name)

pods = core.list_namespaced_pod(namespace, label_selector="app=py-web")
assert isinstance(pods, client.V1PodList), type(pods)
assert [p.metadata.name for p in pods.items] == [running.metadata.name], pods.items
step("list_namespaced_pod", str(len(pods.items)))

log = until(
    "the pod's log",
    lambda: core.read_namespaced_pod_log(running.metadata.name, namespace),
)
assert "hello-python" in log, log
step("read_namespaced_pod_log", log.strip())

patched = apps.patch_namespaced_deployment("py-web", namespace, {"spec": {"replicas": 2}})
assert isinstance(patched, client.V1Deployment), type(patched)
assert patched.spec.replicas == 2, patched.spec
until(
    "two pods",
    lambda: len(core.list_namespaced_pod(namespace, label_selector="app=py-web").items) == 2,
)
step("patch_namespaced_deployment", str(patched.spec.replicas))

try:
    core.read_namespaced_pod("missing", namespace)
    raise SystemExit("reading a missing pod succeeded")
except client.ApiException as error:
    assert error.status == 404, error
    step("not_found", str(error.status))
