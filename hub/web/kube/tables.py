"""`Accept: application/json;as=Table` answers: the columns kubectl get prints."""

from __future__ import annotations

from hub.registry.objects import Obj
from hub.registry.resources import Resource


def table(
    res: Resource,
    objs: list[Obj],
    rv: str | None,
    *,
    include: str = "Metadata",
    headers: bool = True,
    cont: str | None = None,
) -> Obj:
    cols = [
        {"name": c.name, "type": c.type, "format": c.format, "description": c.description, "priority": c.priority}
        for c in res.columns
    ]
    rows = []
    for o in objs:
        if include == "Object":
            ro: Obj | None = o
        elif include == "None":
            ro = None
        else:
            ro = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata", {})}
        row: Obj = {"cells": [c.cell(o) for c in res.columns]}
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    meta: Obj = {"resourceVersion": rv or ""}
    if cont:
        meta["continue"] = cont
    out: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "rows": rows}
    out["columnDefinitions"] = cols if headers else []
    return out
