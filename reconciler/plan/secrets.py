"""Which spec fields are secret, how plans show them, and how rotation is seen.

Secret fields are a destination's credential headers, its `signing_secret`
and its `url` when the URL takes a value from the environment (a password
or a token in the path). Specs hold only `${NAME}` references in those
fields; the reference text is shown, a resolved value never is. To see a
rotated secret without storing it, the state keeps a keyed HMAC digest of
each resolved value (`secret_hashes`, by field path), and plans compare the
digest of today's value with it.

Webhook URLs are shown as scheme and host only, because many carry a token
in the path. Other URLs are shown with any literal password replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from reconciler.plan.fields import format_path
from reconciler.spec.interpolation import find_references, has_references, interpolate

SENSITIVE_CHANGED = "(sensitive value changed)"
SENSITIVE_UNKNOWN = "(sensitive value unknown)"
HIDDEN = "(sensitive)"

_CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie"}
_CREDENTIAL_WORDS = ("token", "secret", "key")


def is_credential_header(name: str) -> bool:
    """Authorization, Proxy-Authorization, Cookie, and names containing token, secret or key."""
    lowered = name.lower()
    return lowered in _CREDENTIAL_HEADERS or any(word in lowered for word in _CREDENTIAL_WORDS)


def secret_fields(normalized: Mapping[str, Any]) -> dict[str, str]:
    """Return the secret fields of a normalised resource, as {path: spec text}.

    Only destinations have secret fields; a URL counts only when it holds a
    reference, since a literal URL is already all in the spec.
    """
    return {format_path(path): text for path, text in secret_field_paths(normalized).items()}


def secret_field_paths(normalized: Mapping[str, Any]) -> dict[tuple[str, ...], str]:
    """Like `secret_fields`, keyed by path tuples."""
    if normalized.get("kind") != "Destination":
        return {}
    spec = normalized.get("spec", {})
    fields: dict[tuple[str, ...], str] = {}
    for header, text in spec.get("headers", {}).items():
        if is_credential_header(header):
            fields[("spec", "headers", header)] = text
    if spec.get("signing_secret"):
        fields[("spec", "signing_secret")] = spec["signing_secret"]
    if isinstance(spec.get("url"), str) and has_references(spec["url"]):
        fields[("spec", "url")] = spec["url"]
    return fields


@dataclass(frozen=True)
class SecretDigests:
    """Digests of the secret fields whose references the environment resolves, and the paths it cannot."""

    digests: dict[str, str]
    unknown: tuple[str, ...]


def digest_secrets(
    normalized: Mapping[str, Any], env: Mapping[str, str], digest: Callable[[str], str]
) -> SecretDigests:
    """Resolve each secret field from `env` and digest it; unset references make the path unknown."""
    digests: dict[str, str] = {}
    unknown: list[str] = []
    for path, text in sorted(secret_fields(normalized).items()):
        if any(ref.default is None and ref.name not in env for ref in find_references(text)):
            unknown.append(path)
            continue
        digests[path] = digest(interpolate(text, env, where=path))
    return SecretDigests(digests, tuple(unknown))


def unset_secret_variables(normalized: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, list[str]]:
    """{path: [variable names]} of secret fields whose references `env` leaves unset without a default."""
    missing: dict[str, list[str]] = {}
    for path, text in sorted(secret_fields(normalized).items()):
        names = [ref.name for ref in find_references(text) if ref.default is None and ref.name not in env]
        if names:
            missing[path] = names
    return missing


def mask_url(text: str, *, host_only: bool) -> str:
    """Mask a URL for plans: keep scheme and host only, or replace a literal password.

    A URL that is one `${NAME}` reference is shown as written: the
    reference is not secret, its value is.
    """
    if text.startswith("${") and text.endswith("}") and "/" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return HIDDEN
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if not parts.scheme or not hostport:
        return HIDDEN if host_only else text
    if host_only:
        return f"{parts.scheme}://{hostport}"
    user, colon, password = userinfo.partition(":")
    if colon and password and not has_references(password):
        return parts._replace(netloc=f"{user}:***@{hostport}").geturl()
    return text


def masked(normalized: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A normalised resource safe to print and to save in a plan file.

    Only destinations have anything to mask, and they come back as a copy.
    Every other resource comes back as it is, so callers must not modify it.
    """
    if normalized is None or normalized.get("kind") != "Destination":
        return normalized
    result = _deep_copy(normalized)
    spec = result.get("spec", {})
    if isinstance(spec.get("url"), str):
        spec["url"] = mask_url(spec["url"], host_only=spec.get("type") == "webhook")
    for header, text in spec.get("headers", {}).items():
        if is_credential_header(header) and not has_references(text):
            spec["headers"][header] = HIDDEN
    if spec.get("signing_secret") and not has_references(spec["signing_secret"]):
        spec["signing_secret"] = HIDDEN
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value
