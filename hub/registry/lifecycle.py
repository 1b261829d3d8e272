"""The object lifecycle: ONE place for the rules every write follows, whoever writes.

The Kubernetes apiserver keeps these rules in its generic registry, below both the HTTP
handlers and the controllers; this module is that layer. kubectl's DELETE and a controller's
delete call the same `RegistryTx.delete`, so deletionTimestamp, generation, grace period,
finalizers and cascade are decided once. The same for updates (validation, generation,
managedFields, "a deleting object may only lose finalizers") and for status updates.

- `Registry` holds the verbs the HTTP surfaces use (get, list, watch, create, replace,
  patch, apply, delete), each one scoped to a `Subject` (hub.registry.access).
- `RegistryTx` is one store transaction with the lifecycle rules on top; controllers use it
  directly (`Registry.transact`) to write many objects atomically.

Errors are Kubernetes `Status` errors (hub.errors.ApiError); store errors are mapped here.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from hub.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    from_store_error,
    invalid,
    not_found,
)
from hub.registry import fieldmanager, queues
from hub.registry.access import SYSTEM, ReadScope, Subject, check_change, check_write, hidden, read_scope
from hub.registry.objects import (
    Obj,
    bump_generation,
    carry_server_meta,
    check_kind,
    json_copy,
    meta,
    place_in_namespace,
    same_but_volatile,
    strip_server_meta,
)
from hub.registry.resources import BY_KEY, BY_KIND, Resource
from hub.registry.selectors import (
    both,
    field_equality,
    parse_field_selector,
    parse_label_selector,
    selectable_projection,
)
from hub.registry.validation import validate_object
from hub.store.errors import StoreError
from hub.store.store import Event, RequirementFailed, Store, Tx, now_rfc3339
from hub.store.watch import Broadcaster, Watcher

T = TypeVar("T")

NAMESPACE: Resource = BY_KIND["Namespace"]
QUEUE: Resource = BY_KIND["Queue"]
PRIORITY_CLASS: Resource = BY_KIND["PriorityClass"]
PROPAGATION_POLICIES = ("Background", "Foreground", "Orphan")
CONTROLLER_MANAGER = "fleetplane-hub"
"""The field manager of the hub's own controllers in managedFields."""


@dataclass(frozen=True)
class WriteOptions:
    """How one write is checked and recorded.

    `field_validation`: Kubernetes' fieldValidation (Strict / Warn / Ignore). HTTP requests
    pass theirs (the server default is Warn); the controllers write Strict, so a controller
    that writes a field the schema does not know fails loudly instead of losing it.
    """

    field_validation: str = "Strict"
    manager: str = CONTROLLER_MANAGER
    dry_run: bool = False


CONTROLLER = WriteOptions()


def store_key(res: Resource, namespace: str | None, name: str) -> tuple[str, str]:
    """(namespace, name) of an object in the store: cluster-scoped objects have namespace ""."""
    return ((namespace or "") if res.namespaced else ""), name


def deleting(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def mark_deleting(obj: Obj) -> bool:
    """Set deletionTimestamp (grace period 0, generation + 1) unless already set; True if set now.

    Kubernetes bumps the generation when it marks an object with finalizers for deletion, so
    controllers that watch generation see the request."""
    m = meta(obj)
    if m.get("deletionTimestamp"):
        return False
    m["deletionTimestamp"] = now_rfc3339()
    m["deletionGracePeriodSeconds"] = 0
    m["generation"] = int(m.get("generation") or 1) + 1
    return True


class RegistryTx:
    """One store transaction with the object lifecycle on top."""

    def __init__(self, tx: Tx, subject: Subject = SYSTEM) -> None:
        self.tx = tx
        self.subject = subject
        self._deleted: set[tuple[str, str, str]] = set()  # handled by delete() in this transaction
        self._namespaces: dict[str, Obj | None] = {}
        """Namespaces `create` read (unlocked) in this transaction: read once, not per object
        (kube-apiserver's namespace admission reads an informer cache, not even the store)."""
        self.defer_namespace_check = False
        """`create` leaves the namespace check (exists, not terminating) to the write statement
        (Tx.require) instead of reading the namespace first: one round trip fewer. Set by
        Registry.create, which retries with the read when the check fails (so the answer,
        404 or 403, is the one the read gives)."""

    # -------------------------------------------------------------- reads

    async def get(self, res: Resource, namespace: str | None, name: str, *, lock: bool = True) -> Obj | None:
        """The stored object (row-locked by default), whatever the subject may see."""
        ns, n = store_key(res, namespace, name)
        return await self.tx.get(res.key, ns, n, lock=lock)

    async def prefetch(self, keys: list[tuple[Resource, str | None, str]]) -> None:
        """Lock many objects in one statement; `get` then hands each out (Tx.prefetch)."""
        await self.tx.prefetch([(res.key, *store_key(res, ns, name)) for res, ns, name in keys])

    async def get_visible(self, res: Resource, namespace: str | None, name: str, scope: ReadScope) -> Obj:
        """The stored object, or 404 when it is missing OR outside the scope (no existence leak)."""
        obj = await self.get(res, namespace, name)
        if obj is None or not scope.allows(obj):
            raise not_found(res.plural, res.group, name)
        return obj

    # -------------------------------------------------------------- writes

    async def create(
        self,
        res: Resource,
        obj: Obj,
        opts: WriteOptions = CONTROLLER,
        *,
        keep_status: bool = False,
    ) -> tuple[Obj, list[str]]:
        """Create a new object: kind, namespace, validation, managedFields, then stage it.

        Status sent on create is dropped (it belongs to the status subresource), except where
        the hub creates an object with its initial status (`keep_status`, controllers only)."""
        obj = check_kind(res, obj)
        m = meta(obj)
        if not m.get("name") and isinstance(m.get("generateName"), str) and m.get("generateName"):
            m["name"] = f"{m['generateName']}{secrets.token_hex(3)[:5]}"
        strip_server_meta(obj)
        namespace = m.get("namespace") if res.namespaced else None
        place_in_namespace(res, obj, namespace)
        # Scope first (404, the same whether anything exists), then the verb (403), then the body.
        scope = read_scope(self.subject, res)
        if not scope.allows(obj):
            raise hidden(res, namespace, m.get("name"), scope, creating=True)
        check_write(self.subject, res, "create", str(m.get("name") or ""), "")
        if res.kind != "Namespace" and not keep_status:
            obj.pop("status", None)
        validated, warnings = validate_object(res, obj, opts.field_validation)
        if res.kind == "Namespace":
            validated["status"] = {"phase": "Active"}
        check_change(self.subject, res, None, validated, "")
        name = meta(validated)["name"]
        deferred = False
        if res.namespaced:
            if self.defer_namespace_check and not opts.dry_run and (namespace or "") not in self._namespaces:
                self.tx.require(NAMESPACE.key, "", namespace or "")  # checked by the write itself
                deferred = True
            else:
                await self._check_namespace(namespace)
        try:
            await self.check_queue_rules(res, None, validated)
        except ApiError:
            if deferred:  # the namespace's answer comes first, as when it is read first
                await self._check_namespace(namespace)
            raise
        fieldmanager.record_update(None, validated, opts.manager, res.api_version)
        if opts.dry_run:
            if await self.get(res, namespace, name, lock=False) is not None:
                raise already_exists(res.plural, res.group, name)
            return validated, warnings
        return self.tx.create(res.key, validated), warnings  # a name taken meanwhile: AlreadyExists at commit

    async def _check_namespace(self, namespace: str | None) -> None:
        """404 when the namespace of a create does not exist, 403 while it is terminating."""
        ns_key = namespace or ""
        if ns_key not in self._namespaces:
            self._namespaces[ns_key] = await self.tx.get(NAMESPACE.key, "", ns_key, lock=False)
        ns_obj = self._namespaces[ns_key]
        if ns_obj is None:
            raise not_found(NAMESPACE.plural, NAMESPACE.group, ns_key)
        if deleting(ns_obj):
            raise forbidden(f"unable to create new content in namespace {namespace} because it is being terminated")

    async def update(
        self,
        res: Resource,
        old: Obj,
        new: Obj,
        *,
        subresource: str = "",
        opts: WriteOptions = CONTROLLER,
    ) -> tuple[Obj, list[str]]:
        """Store the next version of `old`. PUT semantics: `new` is the whole object.

        On the main resource status is kept from `old`; on the status subresource only status
        changes. Server-owned metadata is carried over, generation counts spec changes, a
        deleting object may only lose finalizers, and one that lost its last finalizer is
        removed. Returns (stored object, warnings); `old` when nothing changed."""
        nxt, warnings = self._next_version(res, old, new, subresource, opts)
        return await self._store(res, old, nxt, subresource, opts, None), warnings

    async def update_status(self, res: Resource, old: Obj, status: dict[str, Any] | None) -> Obj:
        """Write `status` through the status subresource (the controllers' way). `status` is
        handed on as is (callers build it fresh); `old` is not copied here: the status path of
        `_next_version` copies what it keeps of it."""
        new = {k: v for k, v in old.items() if k != "status"}
        new["metadata"] = dict(meta(old))  # _next_version sets name/namespace on it
        if status is not None:
            new["status"] = status
        stored, _ = await self.update(res, old, new, subresource="status")
        return stored

    async def add_finalizer(self, res: Resource, old: Obj, finalizer: str) -> Obj:
        fins = meta(old).get("finalizers") or []
        if finalizer in fins:
            return old
        new = json_copy(old)
        meta(new)["finalizers"] = [*fins, finalizer]
        stored, _ = await self.update(res, old, new)
        return stored

    async def remove_finalizer(self, res: Resource, old: Obj, finalizer: str) -> Obj:
        """Drop one finalizer; a deleting object that loses its last one is removed for real."""
        fins = meta(old).get("finalizers") or []
        if finalizer not in fins:
            return old
        new = copy.deepcopy(old)
        meta(new)["finalizers"] = [f for f in fins if f != finalizer]
        if not meta(new)["finalizers"]:
            meta(new).pop("finalizers")
        stored, _ = await self.update(res, old, new)
        return stored

    async def delete(
        self,
        res: Resource,
        obj: Obj,
        *,
        policy: str = "Background",
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """THE delete path (kubectl's DELETE, cascades and the controllers all come here).

        Preconditions (uid, resourceVersion) are checked, dependents are handled per
        propagation policy, then an object with finalizers is marked deleting
        (deletionTimestamp, grace period 0, generation + 1) and one without is removed."""
        check_policy(policy)
        m = meta(obj)
        name = m.get("name", "")
        key = (res.key, m.get("namespace") or "", name)
        if key in self._deleted:
            return obj  # reached twice in one cascade (a namespace's content and its owner's)
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != m.get("uid"):
            raise conflict(
                res.plural,
                res.group,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {m.get('uid')}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != m.get("resourceVersion"):
            raise conflict(
                res.plural,
                res.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                f"ResourceVersion in object meta: {m.get('resourceVersion')}",
            )
        if dry_run:
            return obj
        self._deleted.add(key)
        await self._cascade(res, obj, policy)
        if m.get("finalizers"):
            if mark_deleting(obj):
                self.tx.update(res.key, obj)
            return obj
        self.tx.delete(res.key, obj)
        return obj

    async def check_queue_rules(self, res: Resource, old: Obj | None, new: Obj) -> None:
        """The rules of Queues, PriorityClasses and the Workloads that use them
        (hub.registry.queues), with the other objects they need read in this transaction.

        A Queue's and a PriorityClass's rules hold for every writer, the controllers too; a
        Workload's submission rules for every writer but the controllers. Each reads only when
        the write changes what it looks at, so the controllers' status writes read nothing."""
        if res.kind == "Queue" and queues.spec_changed(old, new):
            causes = queues.queue_causes(new)
            claimed = queues.default_for_claimed(old, new)
            if not causes and claimed:
                # Two writers claiming one namespace serialize on its row (when it exists): the
                # second then reads the first's committed Queue.
                for ns in claimed:  # sorted: two such writers lock in one order
                    await self.get(NAMESPACE, None, ns)
                causes = queues.default_for_causes(new, await self.tx.every(QUEUE.key))
            if causes:
                raise invalid(res.kind, res.group, meta(new)["name"], causes)
        elif res.kind == "PriorityClass" and queues.becomes_global_default(old, new):
            causes = queues.global_default_causes(new, await self.tx.every(PRIORITY_CLASS.key))
            if causes:
                raise invalid(res.kind, res.group, meta(new)["name"], causes)
        elif (
            res.kind == "Workload"
            and self.subject.kind != "system"
            and not deleting(new)
            and queues.submission_changed(old, new)
        ):
            await self._check_submission(res, new)

    async def _check_submission(self, res: Resource, new: Obj) -> None:
        name = meta(new)["name"]
        queue_name = (new.get("spec") or {}).get("queue")
        if queue_name and not self.subject.is_admin:
            # Admins may submit anywhere (the admission controller then marks the workload
            # inadmissible and says why): docs/queues.md, "On the hub".
            why = queues.queue_refusal(new, await self.get(QUEUE, None, queue_name, lock=False))
            if why is not None:
                raise forbidden(f'{res.qualified} "{name}" is forbidden: {why}')
        label = queues.priority_class_label(new)
        if label and await self.get(PRIORITY_CLASS, None, label, lock=False) is None:
            classes = queues.classes_of(await self.tx.every(PRIORITY_CLASS.key))
            causes = queues.priority_class_causes(new, classes)
            if causes:
                raise invalid(res.kind, res.group, name, causes)

    # -------------------------------------------------------------- internals

    def _next_version(
        self,
        res: Resource,
        old: Obj,
        incoming: Obj,
        subresource: str,
        opts: WriteOptions,
    ) -> tuple[Obj, list[str]]:
        """Build the validated next version of `old` from a full `incoming` object."""
        incoming = check_kind(res, incoming)
        want_rv = meta(incoming).get("resourceVersion")
        om = meta(old)
        if want_rv and want_rv != om.get("resourceVersion"):
            raise conflict(res.plural, res.group, om["name"])
        im = meta(incoming)
        if im.get("name") and im["name"] != om["name"]:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({im['name']}) does not match the name on the URL ({om['name']})",
            )
        im["name"] = om["name"]
        if res.namespaced:
            if im.get("namespace") and im["namespace"] != om.get("namespace"):
                raise ApiError(400, "BadRequest", "metadata.namespace: the namespace of an object cannot change")
            im["namespace"] = om.get("namespace")
        if subresource == "status":
            # Neither the old status nor the spec is copied: validation below builds both afresh
            # from its model (validate_object), and only metadata is changed in place.
            new = {k: v for k, v in old.items() if k not in ("status", "metadata")}
            new["metadata"] = json_copy(om)
            if "status" in incoming:
                new["status"] = incoming["status"]
            else:
                new.pop("status", None)
        else:
            new = incoming
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
            # A deleting object may only lose finalizers, never gain them (Kubernetes rule).
            if om.get("deletionTimestamp"):
                added = set(meta(new).get("finalizers") or []) - set(om.get("finalizers") or [])
                if added:
                    raise ApiError(
                        422,
                        "Invalid",
                        f'{res.kind} "{om["name"]}" is being deleted: metadata.finalizers: cannot add {sorted(added)}',
                        causes=[
                            {
                                "reason": "FieldValueForbidden",
                                "field": "metadata.finalizers",
                                "message": "no new finalizers can be added if the object is being deleted",
                            }
                        ],
                    )
        carry_server_meta(old, new)
        validated, warnings = validate_object(res, new, opts.field_validation)
        carry_server_meta(old, validated)
        meta(validated)["resourceVersion"] = om.get("resourceVersion")
        if subresource != "status":
            bump_generation(old, validated)
        fieldmanager.record_update(old, validated, opts.manager, res.api_version, subresource=subresource)
        if same_but_volatile(validated, old):
            return old, warnings
        return validated, warnings

    async def _store(
        self,
        res: Resource,
        old: Obj,
        new: Obj,
        subresource: str,
        opts: WriteOptions,
        scope: ReadScope | None,
    ) -> Obj:
        check_change(self.subject, res, old, new, subresource)
        if scope is not None and not scope.allows(new):
            raise forbidden(f'{res.qualified} "{meta(old)["name"]}": the change would move it out of your scope')
        if new == old:
            return new
        await self.check_queue_rules(res, old, new)
        if opts.dry_run:
            return new
        m = meta(new)
        if m.get("deletionTimestamp") and not m.get("finalizers"):
            self.tx.delete(res.key, new)  # the last finalizer went away: finish the deletion
        else:
            self.tx.update(res.key, new)
        return new

    async def _cascade(self, res: Resource, owner: Obj, policy: str) -> None:
        """Owner-reference garbage collection and namespace content, in the owner's transaction."""
        if res.kind == "Namespace":
            for resource, dep in await self.tx.namespace_contents(meta(owner)["name"]):
                await self.delete(BY_KEY[resource], dep)
            return
        uid = meta(owner).get("uid")
        if not uid:
            return
        for resource, dep in await self.tx.dependents(uid):
            if policy == "Orphan":
                dm = meta(dep)
                dm["ownerReferences"] = [r for r in dm.get("ownerReferences") or [] if r.get("uid") != uid]
                if not dm["ownerReferences"]:
                    dm.pop("ownerReferences")
                self.tx.update(resource, dep)
            else:
                await self.delete(BY_KEY[resource], dep)


@contextmanager
def as_status() -> Iterator[None]:
    """Store errors leave the registry as Kubernetes Status errors (hub.errors.from_store_error)."""
    try:
        yield
    except StoreError as exc:
        raise from_store_error(exc) from exc


def check_policy(policy: str) -> None:
    if policy not in PROPAGATION_POLICIES:
        raise bad_request(
            f'propagationPolicy: Unsupported value: "{policy}": supported values: "Background", "Foreground", "Orphan"'
        )


# ------------------------------------------------------------------ lists and watches


@dataclass(frozen=True)
class ListQuery:
    """What one list or watch selects: the subject's scope, namespace and selectors."""

    namespaces: list[str] | None  # None: every namespace (or a cluster-scoped kind); []: nothing
    predicate: Callable[[Obj], bool] | None
    index: tuple[str, str] | None = None
    """A (field path, value) every selected object has (an equality field selector): watches
    are indexed by it (hub.store.watch.Watcher.index)."""

    def accepts(self, ev: Event) -> bool:
        if self.namespaces is not None and ev.namespace not in self.namespaces:
            return False
        return self.predicate is None or self.predicate(ev.object)


def list_query(
    res: Resource,
    subject: Subject,
    namespace: str | None,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> ListQuery:
    scope = read_scope(subject, res)
    pred = both(
        scope.predicate,
        parse_label_selector(label_selector),
        parse_field_selector(field_selector, res.field_selectors, res.kind),
    )
    index = field_equality(field_selector, res.field_selectors, res.kind)
    if not scope.visible:
        return ListQuery([], pred, index)
    if res.kind == "Namespace" or not res.namespaced:
        return ListQuery(None, pred, index)
    if namespace is not None:
        if scope.namespaces is not None and namespace not in scope.namespaces:
            return ListQuery([], pred, index)
        return ListQuery([namespace], pred, index)
    return ListQuery(list(scope.namespaces) if scope.namespaces is not None else None, pred, index)


@dataclass
class WatchStart:
    """A registered watcher plus what it must send first (see Registry.watch)."""

    watcher: Watcher
    initial: list[Obj]
    backlog: list[Event]
    after: int


class Registry:
    """The verbs of the Kubernetes API, scoped to a subject, on top of the store."""

    def __init__(self, store: Store, broadcaster: Broadcaster) -> None:
        self.store = store
        self.broadcaster = broadcaster
        store.prev_projection = selectable_projection({r.key: r.field_selectors for r in BY_KEY.values()})

    async def transact(
        self, fn: Callable[[RegistryTx], Awaitable[T]], subject: Subject = SYSTEM, *, begin_on_lock: bool = False
    ) -> T:
        """Run `fn` in one store transaction with the lifecycle rules (SYSTEM: the controllers).

        `begin_on_lock` (Store.transact): no BEGIN until the first locking read, for `fn`s that
        only use RegistryTx's methods (not `rtx.tx.conn`)."""
        with as_status():
            return await self.store.transact(lambda tx: fn(RegistryTx(tx, subject)), begin_on_lock=begin_on_lock)

    # -------------------------------------------------------------- reads

    async def get(self, res: Resource, namespace: str | None, name: str, subject: Subject = SYSTEM) -> Obj:
        obj = await self.find(res, namespace, name)
        if obj is None or not read_scope(subject, res).allows(obj):
            raise not_found(res.plural, res.group, name)
        return obj

    async def get_json(self, res: Resource, namespace: str | None, name: str, subject: Subject = SYSTEM) -> str:
        """`get` as the stored JSON text, decoded only when the subject's scope depends on the
        object's content; the same 404 as `get` for a missing object and one out of scope."""
        scope = read_scope(subject, res)
        ns, n = store_key(res, namespace, name)
        with as_status():
            found = await self.store.get_json(res.key, ns, n)
        covered = scope.covers(ns if res.namespaced else None, n)
        if found is None or covered is False or (covered is None and not scope.allows(json.loads(found))):
            raise not_found(res.plural, res.group, name)
        return found

    async def find(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        """The stored object or None (no scope: the hub's own reads)."""
        ns, n = store_key(res, namespace, name)
        with as_status():
            return await self.store.get(res.key, ns, n)

    async def list_objects(
        self,
        res: Resource,
        query: ListQuery,
        *,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> tuple[list[Obj], int, str | None]:
        """(items, resourceVersion, continue token) for a query built by `list_query`."""
        with as_status():
            if query.namespaces == []:
                return [], await self.store.current_rv(), None
            return await self.store.list(
                res.key,
                namespaces=query.namespaces,
                predicate=query.predicate,
                limit=limit,
                continue_token=continue_token,
                field_eq=query.index,
            )

    async def list_json(
        self,
        res: Resource,
        query: ListQuery,
        *,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> tuple[list[str], int, str | None] | None:
        """`list_objects` with each item as JSON text, when the query needs no look inside the
        objects (no selector, no content scope); None when it does (use `list_objects`)."""
        if query.predicate is not None:
            return None
        with as_status():
            if query.namespaces == []:
                return [], await self.store.current_rv(), None
            return await self.store.list_json(
                res.key, namespaces=query.namespaces, limit=limit, continue_token=continue_token
            )

    async def list_all(self, res: Resource) -> list[Obj]:
        """Every object of a kind (the hub's own reads)."""
        with as_status():
            items, _, _ = await self.store.list(res.key, namespaces=None)
        return items

    async def current_rv(self) -> int:
        with as_status():
            return await self.store.current_rv()

    async def watch(self, res: Resource, query: ListQuery, from_rv: int | None) -> WatchStart:
        """Register a watcher. From "now" (from_rv None) it starts with a list of the current
        objects as ADDED; from a resourceVersion it starts with the events after it (410 when
        compacted). Unsubscribe with `self.broadcaster.unsubscribe(start.watcher)`."""
        with as_status():
            watcher, backlog, seam = await self.broadcaster.subscribe(
                res.key, query.accepts, from_rv, selective=query.predicate is not None, index=query.index
            )
        after = max(seam, from_rv or 0)
        initial: list[Obj] = []
        if from_rv is None:
            try:
                initial, snap, _ = await self.list_objects(res, query)
            except BaseException:
                self.broadcaster.unsubscribe(watcher)
                raise
            after = max(after, snap)
        return WatchStart(watcher, initial, backlog, after)

    # -------------------------------------------------------------- writes (HTTP verbs)

    async def create(
        self,
        res: Resource,
        namespace: str | None,
        obj: Obj,
        subject: Subject,
        opts: WriteOptions,
    ) -> tuple[Obj, list[str]]:
        obj = check_kind(res, obj)
        place_in_namespace(res, obj, namespace)

        async def fn(rtx: RegistryTx) -> tuple[Obj, list[str]]:
            return await rtx.create(res, obj, opts)

        async def fn_deferred(rtx: RegistryTx) -> tuple[Obj, list[str]]:
            rtx.defer_namespace_check = True
            return await rtx.create(res, obj, opts)

        # A create reads nothing with a lock, so it is one write statement committed by itself
        # (no BEGIN / COMMIT round trips), which also checks the namespace (RegistryTx.create).
        # When that check fails nothing was written: the create runs again reading the
        # namespace first, which answers 404 / 403 (or succeeds, if it was created meanwhile).
        try:
            return await self.transact(fn_deferred, subject, begin_on_lock=True)
        except RequirementFailed:
            return await self.transact(fn, subject, begin_on_lock=True)

    async def replace(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        incoming: Obj,
        subject: Subject,
        subresource: str,
        opts: WriteOptions,
    ) -> tuple[Obj, list[str]]:
        """PUT: `incoming` is the whole next version."""
        return await self.mutate(res, namespace, name, lambda old: incoming, subject, subresource, opts, verb="update")

    async def mutate(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        build: Callable[[Obj], Obj],
        subject: Subject,
        subresource: str,
        opts: WriteOptions,
        *,
        verb: str = "patch",
    ) -> tuple[Obj, list[str]]:
        """Read-lock the object, let `build(copy of old)` return the whole next version, store it.

        Merge and JSON patches come here with `build` applying the patch."""
        scope = read_scope(subject, res)

        async def fn(rtx: RegistryTx) -> tuple[Obj, list[str]]:
            old = await rtx.get_visible(res, namespace, name, scope)
            check_write(subject, res, verb, name, subresource)
            incoming = build(copy.deepcopy(old))
            if not isinstance(incoming, dict):
                raise ApiError(400, "BadRequest", "the patch result is not an object")
            nxt, warnings = rtx._next_version(res, old, incoming, subresource, opts)
            return await rtx._store(res, old, nxt, subresource, opts, scope), warnings

        return await self.transact(fn, subject)

    async def apply(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        applied: Obj,
        subject: Subject,
        *,
        force: bool,
        opts: WriteOptions,
    ) -> tuple[Obj, list[str], bool]:
        """Server-side apply; creates the object when missing. Returns (object, warnings, created)."""
        applied = check_kind(res, applied)
        strip_server_meta(applied)
        am = meta(applied)
        if am.get("name") and am["name"] != name:
            raise ApiError(
                400, "BadRequest", f"the name of the object ({am['name']}) does not match the name on the URL ({name})"
            )
        am["name"] = name
        place_in_namespace(res, applied, namespace)
        scope = read_scope(subject, res)

        async def fn(rtx: RegistryTx) -> tuple[Obj, list[str], bool]:
            # Outside the scope: the same 404 whether the object exists or not, decided before
            # reading it. Where scope depends on content (an agent's Assignments), a missing
            # object cannot be shown to be the caller's, so it is not found either.
            covered = scope.covers(namespace if res.namespaced else None, name)
            if covered is False:
                raise hidden(res, namespace, name, scope, creating=False)
            old = await rtx.get(res, namespace, name)
            if old is None:
                if covered is None:
                    raise hidden(res, namespace, name, scope, creating=False)
                check_write(subject, res, "create", name, "")
                new = fieldmanager.apply(
                    None, copy.deepcopy(applied), opts.manager, res.api_version, force=force, resource=res.plural
                )
                mf = meta(new).pop("managedFields", None)
                new.pop("status", None)
                validated, warnings = validate_object(res, new, opts.field_validation)
                meta(validated)["managedFields"] = mf
                check_change(subject, res, None, validated, "")
                if res.namespaced:
                    ns_obj = await rtx.get(NAMESPACE, None, namespace or "", lock=False)
                    if ns_obj is None:
                        raise not_found(NAMESPACE.plural, NAMESPACE.group, namespace or "")
                    if deleting(ns_obj):
                        raise forbidden(
                            f"unable to create new content in namespace {namespace} because it is being terminated"
                        )
                await rtx.check_queue_rules(res, None, validated)
                if opts.dry_run:
                    return validated, warnings, True
                return rtx.tx.create(res.key, validated), warnings, True
            if not scope.allows(old):
                raise hidden(res, namespace, name, scope, creating=False)
            check_write(subject, res, "patch", name, "")
            new = fieldmanager.apply(old, applied, opts.manager, res.api_version, force=force, resource=res.plural)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            mf = meta(new).get("managedFields")
            validated, warnings = validate_object(res, new, opts.field_validation)
            carry_server_meta(old, validated)
            meta(validated)["managedFields"] = mf
            meta(validated)["resourceVersion"] = meta(old).get("resourceVersion")
            bump_generation(old, validated)
            if same_but_volatile(validated, old):
                validated = old
            return await rtx._store(res, old, validated, "", opts, scope), warnings, False

        return await self.transact(fn, subject)

    async def delete(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        subject: Subject,
        *,
        policy: str = "Background",
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        check_policy(policy)
        scope = read_scope(subject, res)

        async def fn(rtx: RegistryTx) -> Obj:
            old = await rtx.get_visible(res, namespace, name, scope)
            check_write(subject, res, "delete", name, "")
            return await rtx.delete(res, old, policy=policy, preconditions=preconditions, dry_run=dry_run)

        return await self.transact(fn, subject)
