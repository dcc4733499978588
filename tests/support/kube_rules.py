"""What a real API server, and Kueue's validating webhook, refuse of a batch/v1 Job: the rules the fake API server
of tests/support/kube.py applies to every Job created (a dry run included) or updated (PUT, PATCH).

A JSON schema (kubernetes-validate) checks types and field names only; these are the server's own checks, with its
messages (k8s.io/apimachinery/pkg/util/validation, pkg/apis/batch/validation, pkg/apis/core/validation, Kueue's
pkg/controller/jobframework):

- metadata: name a DNS-1123 subdomain, and at most 63 characters for a Job (the Job controller puts it in the
  `batch.kubernetes.io/job-name` label of its pods: the server reports it on spec.template.labels); label keys
  qualified names, label values at most 63 of `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`; annotation keys
  qualified names, annotations at most 256 KiB in all; the same for the pod template's metadata;
- the Job's spec: restartPolicy Never or OnFailure (Never only, with a podFailurePolicy), podReplacementPolicy
  Failed with a podFailurePolicy, the rules' container names, operators and exit codes, non-negative counts;
- the pod spec: at least one container, container and volume names DNS-1123 labels and unique, an image,
  environment variable names, every volume mount naming a volume and at a unique path;
- an update: name and namespace unchanged; spec.template immutable, except the scheduling directives (template
  labels and annotations, nodeSelector, tolerations, affinity, schedulingGates) of a Job that is suspended and
  never started (what Kueue changes when it admits one); selector, completions, completionMode, podFailurePolicy,
  backoffLimitPerIndex and managedBy immutable; suspend, parallelism, activeDeadlineSeconds, backoffLimit and
  ttlSecondsAfterFinished may change, as on a real server;
- Kueue (`kueue.x-k8s.io/queue-name` present): the queue name a DNS-1123 subdomain (a LocalQueue's name), and
  unchanged while the Job is not suspended. Kueue's mutating webhook (which suspends a queued Job) is not emulated.

`job_errors` and `update_errors` give the field errors; `invalid` the 422 Status a server answers with them,
`denied` the 403 Status of a webhook's denial.
"""

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_WEBHOOK = "vjob.kb.io"  # the name Kueue's validating webhook for batch/v1 Jobs is registered under

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*"
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = f"({QUALIFIED_NAME_FMT})?"
ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
TOTAL_ANNOTATION_SIZE = 256 * 1024


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError."""
    shown = " or ".join(f"'{example}', " for example in examples)  # Go's: "'a',  or 'b', " (two spaces)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def _format_errors(value: str, max_length: int, fmt: str, message: str, *examples: str) -> list[str]:
    """apimachinery's errors for a value of at most `max_length` that must fully match `fmt`."""
    errors = [_max_len(max_length)] if len(value) > max_length else []
    if not re.fullmatch(fmt, value):
        errors.append(_regex_error(message, fmt, *examples))
    return errors


def dns1123_subdomain(value: str) -> list[str]:
    return _format_errors(
        value,
        253,
        DNS1123_SUBDOMAIN_FMT,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
        "start and end with an alphanumeric character",
        "example.com",
    )


def dns1123_label(value: str) -> list[str]:
    return _format_errors(
        value,
        63,
        DNS1123_LABEL_FMT,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
        "end with an alphanumeric character",
        "my-name",
        "123-abc",
    )


QUALIFIED_NAME_MESSAGE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)


def qualified_name(value: str) -> list[str]:
    """apimachinery's IsQualifiedName: [prefix/]name, the prefix a DNS-1123 subdomain, the name at most 63."""
    parts = value.split("/")
    errors: list[str] = []
    if len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors += [f"prefix part {message}" for message in dns1123_subdomain(prefix)]
    elif len(parts) == 1:
        name = parts[0]
    else:
        example = _regex_error(QUALIFIED_NAME_MESSAGE, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        return [f"a qualified name {example} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append(f"name part {_max_len(63)}")
    if not re.fullmatch(QUALIFIED_NAME_FMT, name):
        errors.append(
            "name part " + _regex_error(QUALIFIED_NAME_MESSAGE, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


def label_value(value: str) -> list[str]:
    return _format_errors(
        value,
        63,
        LABEL_VALUE_FMT,
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
        "start and end with an alphanumeric character",
        "MyValue",
        "my_value",
        "12345",
    )


# --- field errors and the Status a server answers with --------------------------------------------------------

REASONS = {
    "Invalid": ("FieldValueInvalid", "Invalid value"),
    "NotSupported": ("FieldValueNotSupported", "Unsupported value"),
    "Required": ("FieldValueRequired", "Required value"),
    "Duplicate": ("FieldValueDuplicate", "Duplicate value"),
    "NotFound": ("FieldValueNotFound", "Not found"),
    "Forbidden": ("FieldValueForbidden", "Forbidden"),
    "TooLong": ("FieldValueTooLong", "Too long"),
}


def _shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass(frozen=True)
class FieldError:
    """One field's error, as apimachinery's field.Error prints it."""

    field: str
    kind: str  # a key of REASONS
    value: Any = None
    detail: str = ""

    def body(self) -> str:
        title = REASONS[self.kind][1]
        if self.kind in ("Invalid", "NotSupported", "Duplicate", "NotFound"):
            text = f"{title}: {_shown(self.value)}"
            return f"{text}: {self.detail}" if self.detail else text
        return f"{title}: {self.detail}" if self.detail else title

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def _aggregate(errors: list[FieldError]) -> str:
    return str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"


def _causes(errors: list[FieldError]) -> list[dict[str, str]]:
    return [{"reason": REASONS[e.kind][0], "message": e.body(), "field": e.field} for e in errors]


def invalid(name: str, errors: list[FieldError]) -> dict[str, Any]:
    """The 422 Status body a real API server answers an invalid Job with."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'Job.batch "{name}" is invalid: {_aggregate(errors)}',
        "reason": "Invalid",
        "details": {"name": name, "group": "batch", "kind": "Job", "causes": _causes(errors)},
        "code": 422,
    }


def denied(errors: list[FieldError], webhook: str = KUEUE_WEBHOOK) -> dict[str, Any]:
    """The 403 Status body of a validating webhook's denial (controller-runtime's admission.Denied)."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'admission webhook "{webhook}" denied the request: {_aggregate(errors)}',
        "reason": "Forbidden",
        "code": 403,
    }


# --- a Job as created -------------------------------------------------------------------------------------------


def _meta_errors(meta: dict[str, Any], path: str) -> list[FieldError]:
    errors = []
    for key, value in (meta.get("labels") or {}).items():
        errors += [FieldError(f"{path}.labels", "Invalid", key, m) for m in qualified_name(key)]
        if not isinstance(value, str):
            errors.append(FieldError(f"{path}.labels", "Invalid", value, "must be a string"))
            continue
        errors += [FieldError(f"{path}.labels", "Invalid", value, m) for m in label_value(value)]
    annotations = meta.get("annotations") or {}
    for key in annotations:
        errors += [FieldError(f"{path}.annotations", "Invalid", key, m) for m in qualified_name(key.lower())]
    if sum(len(k) + len(str(v)) for k, v in annotations.items()) > TOTAL_ANNOTATION_SIZE:
        errors.append(
            FieldError(f"{path}.annotations", "TooLong", detail=f"must have at most {TOTAL_ANNOTATION_SIZE} bytes")
        )
    return errors


def _name_errors(meta: dict[str, Any]) -> list[FieldError]:
    name = meta.get("name") or ""
    if not name:
        if meta.get("generateName"):
            return []
        return [FieldError("metadata.name", "Required", detail="name or generateName is required")]
    errors = [FieldError("metadata.name", "Invalid", name, m) for m in dns1123_subdomain(name)]
    if len(name) > 63:  # the pods' batch.kubernetes.io/job-name label the server adds to the template
        errors.append(FieldError("spec.template.labels", "Invalid", name, _max_len(63)))
    return errors


def _pod_spec_errors(spec: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    volumes: set[str] = set()
    for i, volume in enumerate(spec.get("volumes") or []):
        name = volume.get("name") or ""
        where = f"{path}.volumes[{i}].name"
        if not name:
            errors.append(FieldError(where, "Required"))
        errors += [FieldError(where, "Invalid", name, m) for m in dns1123_label(name)] if name else []
        if name in volumes:
            errors.append(FieldError(where, "Duplicate", name))
        volumes.add(name)
    containers = spec.get("containers") or []
    if not containers:
        errors.append(FieldError(f"{path}.containers", "Required"))
    names: set[str] = set()
    for i, container in enumerate(containers):
        where = f"{path}.containers[{i}]"
        name = container.get("name") or ""
        if not name:
            errors.append(FieldError(f"{where}.name", "Required"))
        else:
            errors += [FieldError(f"{where}.name", "Invalid", name, m) for m in dns1123_label(name)]
        if name in names:
            errors.append(FieldError(f"{where}.name", "Duplicate", name))
        names.add(name)
        if not container.get("image"):
            errors.append(FieldError(f"{where}.image", "Required"))
        for j, env in enumerate(container.get("env") or []):
            env_name = env.get("name") or ""
            if not re.fullmatch(ENV_VAR_NAME_FMT, env_name):
                message = _regex_error(
                    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or "
                    "'.', and must not start with a digit",
                    ENV_VAR_NAME_FMT,
                    "my.env-name",
                    "MY_ENV.NAME",
                    "MyEnvName1",
                )
                errors.append(FieldError(f"{where}.env[{j}].name", "Invalid", env_name, message))
        paths: set[str] = set()
        for j, mount in enumerate(container.get("volumeMounts") or []):
            if mount.get("name") not in volumes:
                errors.append(FieldError(f"{where}.volumeMounts[{j}].name", "NotFound", mount.get("name")))
            mount_path = mount.get("mountPath") or ""
            if not mount_path:
                errors.append(FieldError(f"{where}.volumeMounts[{j}].mountPath", "Required"))
            elif mount_path in paths:
                errors.append(
                    FieldError(f"{where}.volumeMounts[{j}].mountPath", "Invalid", mount_path, "must be unique")
                )
            paths.add(mount_path)
    return errors


def _pod_failure_policy_errors(spec: dict[str, Any], containers: set[str]) -> list[FieldError]:
    policy = spec.get("podFailurePolicy")
    if policy is None:
        return []
    errors = []
    for i, rule in enumerate(policy.get("rules") or []):
        where = f"spec.podFailurePolicy.rules[{i}]"
        actions = ["Count", "FailIndex", "FailJob", "Ignore"]
        if rule.get("action") not in actions:
            errors.append(FieldError(f"{where}.action", "NotSupported", rule.get("action"), _supported(actions)))
        on_codes, on_conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if (on_codes is None) == (on_conditions is None):
            errors.append(
                FieldError(where, "Invalid", "", "specifying one of OnExitCodes and OnPodConditions is required")
            )
        if on_codes is not None:
            name = on_codes.get("containerName")
            if name is not None and name not in containers:
                message = "must be one of the container or initContainer names in the pod template"
                errors.append(FieldError(f"{where}.onExitCodes.containerName", "Invalid", name, message))
            operator = on_codes.get("operator")
            if operator not in ("In", "NotIn"):
                errors.append(
                    FieldError(f"{where}.onExitCodes.operator", "NotSupported", operator, _supported(["In", "NotIn"]))
                )
            values = on_codes.get("values") or []
            if not values:
                errors.append(
                    FieldError(f"{where}.onExitCodes.values", "Invalid", values, "at least one value is required")
                )
            for j, value in enumerate(values):
                if operator == "In" and value == 0:
                    errors.append(
                        FieldError(
                            f"{where}.onExitCodes.values[{j}]", "Invalid", 0, "must not be 0 for the In operator"
                        )
                    )
                if j and value == values[j - 1]:
                    errors.append(FieldError(f"{where}.onExitCodes.values[{j}]", "Duplicate", value))
                elif j and value < values[j - 1]:
                    errors.append(FieldError(f"{where}.onExitCodes.values[{j}]", "Invalid", value, "must be ordered"))
        for j, condition in enumerate(on_conditions or []):
            if condition.get("status") not in ("True", "False", "Unknown"):
                errors.append(
                    FieldError(
                        f"{where}.onPodConditions[{j}].status",
                        "NotSupported",
                        condition.get("status"),
                        _supported(["True", "False", "Unknown"]),
                    )
                )
    return errors


def _supported(values: list[str]) -> str:
    return "supported values: " + ", ".join(f'"{value}"' for value in values)


def job_errors(job: dict[str, Any]) -> list[FieldError]:
    """The API server's validation of a Job (ValidateJob): the field errors, [] when it is valid."""
    meta, spec = job.get("metadata") or {}, job.get("spec") or {}
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    errors = _name_errors(meta) + _meta_errors(meta, "metadata")
    errors += _meta_errors(template.get("metadata") or {}, "spec.template.metadata")
    for key in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        if spec.get(key) is not None and spec[key] < 0:
            errors.append(FieldError(f"spec.{key}", "Invalid", spec[key], "must be greater than or equal to 0"))
    if spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] <= 0:
        errors.append(
            FieldError("spec.activeDeadlineSeconds", "Invalid", spec["activeDeadlineSeconds"], "must be greater than 0")
        )
    restart = pod.get("restartPolicy")
    if restart not in ("OnFailure", "Never"):
        errors.append(
            FieldError("spec.template.spec.restartPolicy", "NotSupported", restart, _supported(["OnFailure", "Never"]))
        )
    elif spec.get("podFailurePolicy") is not None and restart != "Never":
        message = 'only "Never" is supported when podFailurePolicy is specified'
        errors.append(FieldError("spec.template.spec.restartPolicy", "Invalid", restart, message))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        allowed = ["Failed"] if spec.get("podFailurePolicy") is not None else ["Failed", "TerminatingOrFailed"]
        if replacement not in allowed:
            errors.append(FieldError("spec.podReplacementPolicy", "NotSupported", replacement, _supported(allowed)))
    containers = {c.get("name") for c in (pod.get("containers") or []) + (pod.get("initContainers") or [])}
    errors += _pod_failure_policy_errors(spec, containers)
    errors += _pod_spec_errors(pod, "spec.template.spec")
    return errors


def kueue_create_errors(job: dict[str, Any]) -> list[FieldError]:
    """Kueue's webhook on create: a queue name (the LocalQueue's name) is a DNS-1123 subdomain."""
    labels = (job.get("metadata") or {}).get("labels") or {}
    if KUEUE_QUEUE_LABEL not in labels:
        return []
    queue = labels[KUEUE_QUEUE_LABEL]
    return [FieldError(f"metadata.labels[{KUEUE_QUEUE_LABEL}]", "Invalid", queue, m) for m in dns1123_subdomain(queue)]


# --- a Job updated ------------------------------------------------------------------------------------------------

IMMUTABLE_SPEC = ("selector", "completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy")
SCHEDULING_DIRECTIVES = ("nodeSelector", "tolerations", "affinity", "schedulingGates")


def _immutable(field: str, new: Any) -> FieldError:
    return FieldError(field, "Invalid", new, "field is immutable")


def _without_scheduling_directives(template: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(template)
    meta = template.setdefault("metadata", {})
    meta.pop("labels", None)
    meta.pop("annotations", None)
    for key in SCHEDULING_DIRECTIVES:
        template.setdefault("spec", {}).pop(key, None)
    return template


def update_errors(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """The API server's validation of an update (ValidateJobUpdate): the new Job's own errors, then the fields
    that may not change."""
    errors = job_errors(new)
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    for key in ("name", "namespace"):
        if new_meta.get(key) != old_meta.get(key):
            errors.append(_immutable(f"metadata.{key}", new_meta.get(key)))
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    for key in IMMUTABLE_SPEC:
        if new_spec.get(key) != old_spec.get(key):
            errors.append(_immutable(f"spec.{key}", new_spec.get(key)))
    if new_spec.get("completions") != old_spec.get("completions"):
        elastic = (
            new_spec.get("completionMode") == "Indexed"
            and new_spec.get("completions") == new_spec.get("parallelism")
            and old_spec.get("completions") == old_spec.get("parallelism")
        )
        if not elastic:
            errors.append(_immutable("spec.completions", new_spec.get("completions")))
    old_template, new_template = old_spec.get("template") or {}, new_spec.get("template") or {}
    if new_template != old_template:
        never_started = bool(old_spec.get("suspend")) and not (old.get("status") or {}).get("startTime")
        if not never_started or _without_scheduling_directives(new_template) != _without_scheduling_directives(
            old_template
        ):
            errors.append(_immutable("spec.template", new_template))
    return errors


def kueue_update_errors(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """Kueue's webhook on update: the create rules, and the queue name unchanged while the Job is not suspended."""
    errors = kueue_create_errors(new)
    old_queue = ((old.get("metadata") or {}).get("labels") or {}).get(KUEUE_QUEUE_LABEL)
    new_queue = ((new.get("metadata") or {}).get("labels") or {}).get(KUEUE_QUEUE_LABEL)
    if old_queue != new_queue and not (new.get("spec") or {}).get("suspend"):
        errors.append(_immutable(f"metadata.labels[{KUEUE_QUEUE_LABEL}]", new_queue))
    return errors


# --- patches ------------------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (a strategic merge patch is taken as one: its lists replace, as the fake's
    tests never patch a list)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902 JSON patch: add, replace, remove and test; ValueError when an operation does not apply."""
    document = copy.deepcopy(target)
    for operation in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
        parent = document
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        op = operation["op"]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op == "add":
                parent.insert(index, operation["value"])
            elif op == "replace":
                parent[index] = operation["value"]
            elif op == "remove":
                del parent[index]
            elif op == "test" and parent[index] != operation["value"]:
                raise ValueError(f"test failed at {operation['path']}")
        else:
            if op in ("replace", "remove", "test") and last not in parent:
                raise ValueError(f"{operation['path']} does not exist")
            if op in ("add", "replace"):
                parent[last] = operation["value"]
            elif op == "remove":
                del parent[last]
            elif op == "test" and parent[last] != operation["value"]:
                raise ValueError(f"test failed at {operation['path']}")
    return document
