"""selector: removes clusters whose labels do not match the workload's cluster selector."""

from __future__ import annotations

import numpy as np

from placement.fleet import MISSING, BoolArray, FleetArrays, FleetState, IntArray
from placement.plugins.base import BasePlugin, ExplainView, Query, Stage


def _codes(a: FleetArrays, key: str) -> IntArray:
    codes = a.label_codes.get(key)
    return codes if codes is not None else np.full(a.n_clusters, MISSING, dtype=np.int64)


def _value_codes(a: FleetArrays, key: str, values: tuple[str, ...]) -> list[int]:
    vocab = a.label_vocab.get(key, {})
    return [vocab[v] for v in values if v in vocab]


class Selector(BasePlugin):
    name = "selector"
    stage: Stage | None = "cluster"

    def filter(self, q: Query, state: FleetState) -> BoolArray | None:
        sel = q.workload.selector
        if sel is None or (not sel.match_labels and not sel.match_expressions):
            return None
        a = state.arrays
        cached = a.cache.get(("selector", sel))
        if cached is not None:
            return cached  # type: ignore[return-value]
        mask = np.ones(a.n_clusters, dtype=np.bool_)
        for key, value in sel.match_labels:
            mask &= _codes(a, key) == a.label_vocab.get(key, {}).get(value, -2)
        for req in sel.match_expressions:
            codes = _codes(a, req.key)
            if req.operator == "In":
                mask &= np.isin(codes, _value_codes(a, req.key, req.values))
            elif req.operator == "NotIn":
                # Kubernetes semantics: a cluster without the label satisfies NotIn.
                mask &= ~np.isin(codes, _value_codes(a, req.key, req.values))
            elif req.operator == "Exists":
                mask &= codes != MISSING
            else:
                mask &= codes == MISSING
        a.cache[("selector", sel)] = mask
        return mask

    def why(self, q: Query, view: ExplainView, index: int) -> tuple[str, str]:
        sel = q.workload.selector
        labels = view.arrays.snapshot.clusters[index].labels
        failed: list[str] = []
        if sel is not None:
            failed += [f"{k}={v}" for k, v in sel.match_labels if labels.get(k) != v]
            failed += [
                f"{r.key} {r.operator} {list(r.values)}"
                for r in sel.match_expressions
                if not type(sel)((), (r,)).matches(labels)
            ]
        return ("selector mismatch", f"labels do not match selector ({'; '.join(failed)})")
