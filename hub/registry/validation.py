"""Validation of whole objects against the kind's pydantic model, and of their metadata.

fieldValidation follows Kubernetes: Strict rejects unknown fields (400, "strict decoding
error: unknown field ..."), Warn (the server default) drops them and returns a Warning header,
Ignore drops them silently. Every other schema error is 422 Invalid with one cause per field.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from pydantic import ValidationError

from fleetplane_types.v1alpha1 import DNS1123_LABEL, DNS1123_SUBDOMAIN
from hub.errors import ApiError, bad_request, invalid
from hub.registry.objects import json_copy
from hub.registry.resources import Resource

Obj = dict[str, Any]

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
MAX_ANNOTATIONS_BYTES = 256 * 1024
"""Kubernetes' limit on the total size of an object's annotations (keys and values)."""


def qualified_name_problem(key: str) -> str | None:
    """Why `key` is not a Kubernetes qualified name ("[prefix/]name"), or None when it is.

    The name part: at most 63 characters, alphanumeric, '-', '_' or '.', starting and ending
    alphanumeric. The optional prefix: a lowercase DNS subdomain of at most 253 characters."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "must not start with '/'"
    if not name:
        return "must have a name part (after the '/')"
    if len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            "must be 63 characters or less, alphanumeric, '-', '_' or '.', starting and ending "
            "with an alphanumeric character (with an optional DNS subdomain prefix and '/')"
        )
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        return "prefix must be a lowercase DNS subdomain of at most 253 characters"
    return None


def _shown(text: str) -> str:
    """A value as quoted in an error: long ones cut, so an error never echoes a huge input."""
    return text if len(text) <= 80 else text[:77] + "..."


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _drop(obj: Any, loc: tuple[Any, ...]) -> None:
    cur = obj
    for part in loc[:-1]:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(cur, dict):
        cur.pop(loc[-1], None)


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic inserts validator names for unions / tagged types; keep only field names and indices.
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))


def field_validation_mode(field_validation: str | None) -> str:
    """Strict, Warn or Ignore (any case; absent means Warn, the server default); 400 otherwise."""
    mode = (field_validation or "Warn").capitalize()
    if mode not in ("Strict", "Warn", "Ignore"):
        raise bad_request(
            f'fieldValidation: must be one of Strict, Warn, Ignore, not "{_shown(field_validation or "")}"'
        )
    return mode


def validate_object(res: Resource, obj: Obj, field_validation: str) -> tuple[Obj, list[str]]:
    """Validate a full object. Returns (normalized object with defaults, warnings)."""
    name = (obj.get("metadata") or {}).get("name") or ""
    mode = field_validation_mode(field_validation)
    work = obj  # copied before the first unknown field is dropped: the caller's object never changes
    copied = False
    warnings: list[str] = []
    for _ in range(3):
        try:
            model = res.model.model_validate(work)
            break
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            unknown = [_clean_loc(e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
            others = [e for e in errors if e["type"] != "extra_forbidden"]
            if unknown and mode == "Strict":
                fields = ", ".join(f'unknown field "{_loc(u)}"' for u in unknown)
                raise ApiError(
                    400,
                    "BadRequest",
                    f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: strict decoding error: {fields}',
                    details={
                        "name": name,
                        "kind": res.plural,
                        "group": res.group,
                        "causes": [
                            {"reason": "FieldValueInvalid", "field": _loc(u), "message": "unknown field"}
                            for u in unknown
                        ],
                    },
                ) from None
            if others:
                causes = []
                for e in others:
                    field = _loc(_clean_loc(e["loc"]))
                    msg = e["msg"]
                    if e.get("input") is not None and e["type"] not in ("missing",):
                        shown = json.dumps(e["input"], default=str)
                        if len(shown) <= 60:
                            msg = f"Invalid value: {shown}: {msg}"
                    causes.append({"reason": "FieldValueInvalid", "field": field, "message": msg})
                raise invalid(res.kind, res.group, name, metadata_causes(res, work) + causes) from None
            if not copied:
                work, copied = copy.deepcopy(work), True
            for u in unknown:
                if mode == "Warn":
                    warnings.append(f'unknown field "{_loc(u)}"')
                _drop(work, u)
    else:  # pragma: no cover - three rounds always converge
        raise bad_request("could not validate object")
    dumped = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    # What is not taken from the model's dump (fresh objects) is copied unless it already was:
    # the caller may keep `obj` (a controller's cached object), the lifecycle changes `out`.
    keep = (lambda v: v) if copied else json_copy
    out = {"apiVersion": res.api_version, "kind": res.kind, "metadata": keep(work.get("metadata") or {})}
    for key in ("spec", "status"):
        if key in dumped:
            out[key] = dumped[key]
        elif key in work and work[key] is not None:
            out[key] = keep(work[key])
    for key, value in dumped.items():  # kinds with top-level fields (core/v1 Event)
        out.setdefault(key, value)
    check_metadata(res, out)
    return out, warnings


def check_metadata(res: Resource, obj: Obj) -> None:
    causes = metadata_causes(res, obj)
    if causes:
        raise invalid(res.kind, res.group, (obj.get("metadata") or {}).get("name") or "", causes)


def metadata_causes(res: Resource, obj: Obj) -> list[dict[str, str]]:
    meta = obj.get("metadata") or {}
    if not isinstance(meta, dict):
        return []
    name = meta.get("name") or ""
    causes = []
    pattern, limit, what = (
        (DNS1123_LABEL, 63, "a lowercase RFC 1123 label")
        if res.kind == "Namespace"
        else (DNS1123_SUBDOMAIN, 253, "a lowercase RFC 1123 subdomain")
    )
    if not name:
        causes.append(
            {
                "reason": "FieldValueRequired",
                "field": "metadata.name",
                "message": "Required value: name or generateName is required",
            }
        )
    elif len(name) > limit or not pattern.match(name):
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "field": "metadata.name",
                "message": f"Invalid value: \"{name}\": must be {what} (lowercase letters, digits, '-' and '.', "
                f"starting and ending with a letter or digit, at most {limit} characters)",
            }
        )
    labels: dict[str, Any] = meta["labels"] if isinstance(meta.get("labels"), dict) else {}
    for k, v in labels.items():
        if (why := qualified_name_problem(k)) is not None:
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "field": "metadata.labels",
                    "message": f'Invalid value: "{_shown(k)}": a label key {why}',
                }
            )
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "field": f"metadata.labels.{_shown(k)}",
                    "message": f'Invalid value: "{_shown(str(v))}": a label value must be 63 characters or less, '
                    "alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character",
                }
            )
    annotations: dict[str, Any] = meta["annotations"] if isinstance(meta.get("annotations"), dict) else {}
    total = 0
    for k, v in annotations.items():
        total += len(k) + len(v if isinstance(v, str) else "")
        if (why := qualified_name_problem(k)) is not None:
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "field": "metadata.annotations",
                    "message": f'Invalid value: "{_shown(k)}": an annotation key {why}',
                }
            )
    if total > MAX_ANNOTATIONS_BYTES:
        causes.append(
            {
                "reason": "FieldValueTooLong",
                "field": "metadata.annotations",
                "message": f"Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes in total",
            }
        )
    fins: list[Any] = meta["finalizers"] if isinstance(meta.get("finalizers"), list) else []
    for i, f in enumerate(fins):
        if isinstance(f, str) and (why := qualified_name_problem(f)) is not None:
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "field": f"metadata.finalizers[{i}]",
                    "message": f'Invalid value: "{_shown(f)}": a finalizer name {why}',
                }
            )
    return causes
