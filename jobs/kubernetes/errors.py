"""Turns what the Kubernetes client raises into one sentence a person can act on.

Pure functions over exceptions and Status bodies; this module never imports `kubernetes` (it
recognises the client's exceptions by their attributes) and never quotes a credential.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from daemon.util.text import clip

INSTALL_HINT = "install it: pip install 'watchkeeper[kubernetes]'"
QUOTE_CHARS = 300

_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]+)"| (?P<cluster>at the cluster scope))?'
)


class KubernetesError(Exception):
    """An expected failure of a Kubernetes call, already phrased as evidence."""

    def __init__(self, message: str, *, stale_client: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.stale_client = stale_client
        """The cached client should be rebuilt (its credentials were rejected)."""


@dataclass(frozen=True)
class Request:
    """What was asked of the API, to name it in evidence: `list pods in namespace prod`."""

    resource: str
    namespace: str | None = None
    group: str = ""
    verb: str = "list"
    cluster_scoped: bool = False
    avoid: str = ""
    """The setting that skips this call, offered beside the grant when it is forbidden (the
    `kubernetes` check's `nodes = false`); empty where none exists (a sweep's node list)."""

    def __str__(self) -> str:
        if self.cluster_scoped:
            where = ""
        elif self.namespace is None:
            where = " in all namespaces"
        else:
            where = f" in namespace {self.namespace}"
        return f"{self.verb} {self.resource}{where}"


class _StatusDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")
    kind: str = ""
    group: str = ""
    name: str = ""


class _Status(BaseModel):
    """The API server's `kind: Status` error body."""

    model_config = ConfigDict(extra="ignore")
    message: str = ""
    reason: str = ""
    code: int | None = None
    details: _StatusDetails | None = None


def status_message(body: object) -> str:
    """The `message` of a Status body, or a short quote of whatever came back."""
    if not isinstance(body, str | bytes) or not body:
        return ""
    try:
        status = _Status.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        return clip(text.strip(), QUOTE_CHARS)
    return clip(status.message or status.reason, QUOTE_CHARS)


def describe_api_error(
    exc: BaseException, request: Request, host: str, *, in_cluster: bool = False
) -> KubernetesError:
    """A client exception raised while doing `request` against `host`, as evidence."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and hasattr(exc, "body"):
        return _describe_http(status, exc, request, host, in_cluster)
    return KubernetesError(f"cannot reach the Kubernetes API at {host}: {_network_reason(exc)}")


def _describe_http(
    status: int, exc: BaseException, request: Request, host: str, in_cluster: bool
) -> KubernetesError:
    body = getattr(exc, "body", None)
    if status == 0:  # the client's own failures: TLS, an unreadable content type
        reason = str(getattr(exc, "reason", "") or exc).strip()
        last = clip(reason.splitlines()[-1] if reason else type(exc).__name__, QUOTE_CHARS)
        tls = "TLS error: " if "SSL" in reason else ""
        return KubernetesError(f"cannot talk to the Kubernetes API at {host}: {tls}{last}")
    if status == 401:
        if in_cluster:
            return KubernetesError(
                "the service account token was rejected (401): check that the pod's "
                "service account token is mounted and current",
                stale_client=True,
            )
        return KubernetesError(
            "the kubeconfig's credentials were rejected (401): refresh them, e.g. "
            "`aws eks update-kubeconfig` / `gcloud container clusters get-credentials`",
            stale_client=True,
        )
    if status == 403:
        return KubernetesError(describe_forbidden(status_message(body), request))
    message = status_message(body)
    reason = str(getattr(exc, "reason", "") or "")
    answer = f"{status} {reason}" if reason else str(status)
    detail = f": {message}" if message else ""
    return KubernetesError(f"the Kubernetes API at {host} answered {answer} to {request}{detail}")


def describe_forbidden(message: str, request: Request) -> str:
    """`forbidden: cannot list pods in namespace prod (RBAC): grant list on pods …`, from the
    Status message when it names the verb and resource, else from what was asked."""
    match = _FORBIDDEN.search(message)
    verb = match["verb"] if match else request.verb
    resource = match["resource"] if match else request.resource
    group = (match["group"] or "") if match else request.group
    namespace = match["namespace"] if match else request.namespace
    as_user = f", as {match['user']}" if match and match["user"] else ""
    what = f"{resource}.{group}" if group else resource
    if namespace:
        where = f" in namespace {namespace}"
        grant = f"grant {verb} on {what} in {namespace} (a Role and RoleBinding)"
    else:
        where = "" if request.cluster_scoped else " in all namespaces"
        grant = f"grant {verb} on {what} with a ClusterRole and ClusterRoleBinding"
    if request.avoid:
        grant += f", or {request.avoid}"
    elif not namespace and not request.cluster_scoped:
        grant += ", or list the namespaces to watch in `namespaces`"
    return f"forbidden: cannot {verb} {what}{where} (RBAC{as_user}): {grant}"


def _network_reason(exc: BaseException) -> str:
    """The root cause from urllib3's wrapped errors: refused, DNS, timeout, TLS, reset."""
    seen: BaseException | None = exc
    while seen is not None:
        name = type(seen).__name__
        text = str(seen)
        if isinstance(seen, ConnectionRefusedError) or "Connection refused" in text:
            return "connection refused"
        if name == "NameResolutionError" or "Name or service not known" in text:
            return "DNS lookup failed"
        if name in ("ConnectTimeoutError", "ReadTimeoutError") or isinstance(seen, TimeoutError):
            return "the connection timed out"
        if "SSLError" in name or "CERTIFICATE_VERIFY_FAILED" in text:
            return f"TLS error: {clip(text, 200)}"
        if isinstance(seen, ConnectionResetError) or "Connection reset" in text:
            return "connection reset by peer"
        if "RemoteDisconnected" in text or name == "ProtocolError":
            return "the server closed the connection without answering"
        seen = getattr(seen, "reason", None) if name == "MaxRetryError" else None
        if not isinstance(seen, BaseException):
            break
    return clip(f"{type(exc).__name__}: {exc}", 200)


def is_timeout(exc: BaseException) -> bool:
    """A read or connect timeout from urllib3 (possibly wrapped in MaxRetryError)."""
    seen: object = exc
    for _ in range(3):
        if type(seen).__name__ in ("ReadTimeoutError", "ConnectTimeoutError") or isinstance(
            seen, TimeoutError
        ):
            return True
        seen = getattr(seen, "reason", None)
    return False
