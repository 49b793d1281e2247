"""Execute a change set: server-side apply in level order, waiting for CRDs between levels and for
``config.kubernetes.io/depends-on`` targets to be Current before their dependents, then prunes in
reverse level order. The requests of a level go out side by side, at most
``concurrency`` at a time. Failures are results, not exceptions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from acm_lite import api, errors, health, kinds
from acm_lite.apply import wait, waiting, writes
from acm_lite.cluster.client import ApiError, Call, Client
from acm_lite.cluster.discovery import Discovery, Resource
from acm_lite.errors import AcmError, Category, Problem
from acm_lite.health import Health, Status
from acm_lite.objects import GroupKind, ObjectId, split_api_version
from acm_lite.plan import ownership, protected
from acm_lite.plan.changeset import Action, Change, ChangeSet, Outcome, Result

_DONE = {
    Action.CREATE: Outcome.CREATED,
    Action.UPDATE: Outcome.CONFIGURED,
    Action.UNMANAGE: Outcome.UNMANAGED,
    Action.PRUNE: Outcome.PRUNED,
}


@dataclass(frozen=True)
class ApplyOptions:
    field_manager: str = api.FIELD_MANAGER
    force_conflicts: bool = True
    concurrency: int = 16
    dry_run: bool = False
    crd_timeout: float = 60.0
    # seconds the depends-on targets a level applied get to become Current before the objects
    # depending on them are skipped (Config Sync's reconcileTimeout, 5m by default)
    reconcile_timeout: float = 300.0
    selector: str | None = None  # the label selector every applied object carries (for lists)
    prevalidated: frozenset[GroupKind] = frozenset()  # kinds whose fields were checked offline


def _problem(change: Change, error: AcmError) -> Problem:
    if change.manifest is not None:
        return error.to_problem(source=change.manifest.source, obj=change.manifest.describe())
    return error.to_problem(obj=change.id.describe())


class Applier:
    def __init__(
        self,
        cluster: Client,
        discovery: Discovery,
        options: ApplyOptions,
        on_result: Callable[[Result], None] = lambda _r: None,
    ):
        self.cluster = cluster
        self.discovery = discovery
        self.options = options
        self.on_result = on_result
        self._new_namespaces: set[str] = set()
        self._not_current: dict[ObjectId, Health] = {}  # depends-on targets that did not become Current

    def _call(self, change: Change) -> Call:
        """The request that carries out ``change``, at the version the object is declared at."""
        path = self._resource(change).path_of(change.id)
        options = self.options
        if change.action in (Action.CREATE, Action.UPDATE):
            # a kind checked offline against the strict schema already is not checked again
            checked = change.id.group_kind in options.prevalidated
            return writes.server_side_apply(
                path,
                change.desired,
                field_manager=options.field_manager,
                force=options.force_conflicts,
                field_validation="Ignore" if checked else None,
                dry_run=options.dry_run,
            )
        if change.action is Action.UNMANAGE:
            return writes.merge_patch(
                path, ownership.unmanage_patch(), field_manager=options.field_manager, dry_run=options.dry_run
            )
        # PRUNE: only the exact object that was listed as ours, and never a protected one (the
        # plan unmanages those; this is the last check before a DELETE goes out)
        if protected.never_delete(change.id):
            raise AcmError(
                errors.DELETE_REFUSED,
                f"refusing to delete {change.id}: a protected object is only ever unmanaged",
                subject=change.subject,
            )
        uid = ((change.live or {}).get("metadata") or {}).get("uid")
        return writes.delete(path, uid=uid, propagation="Background", dry_run=options.dry_run)

    def _resource(self, change: Change) -> Resource:
        """Where ``change`` is sent. Applies go to the declared version, or fail with a coded
        error when the cluster does not serve it. Prunes and unmanages change no declared
        field: the version the object is (or was last applied) at while it is served, else the
        preferred one."""
        gk = change.id.group_kind
        if change.manifest is not None:
            version = change.manifest.version
        else:
            version = split_api_version(self._last_applied_at(change.live or {}))[1]
        if change.action in (Action.CREATE, Action.UPDATE):
            return self.discovery.resource(gk, version)
        found = self.discovery.find(gk, version, fallback=True)
        return found if found is not None else self.discovery.resource(gk)

    def _last_applied_at(self, live: dict[str, Any]) -> str:
        """The apiVersion this field manager last applied ``live`` at (its managedFields
        record it), else the one it was read at: an object that left the source is removed at
        the version it was declared with."""
        for entry in (live.get("metadata") or {}).get("managedFields") or []:
            if (
                isinstance(entry, dict)
                and entry.get("manager") == self.options.field_manager
                and entry.get("operation") == "Apply"
                and entry.get("apiVersion")
            ):
                return str(entry["apiVersion"])
        return str(live.get("apiVersion", ""))

    @staticmethod
    def _settled(change: Change, error: ApiError | AcmError | None) -> Result:
        """The result of ``change`` once its request answered (``error`` None: it succeeded)."""
        if error is None:
            return Result(change, _DONE[change.action])
        if isinstance(error, ApiError):
            if change.action is Action.PRUNE and error.status == 404:
                return Result(change, Outcome.PRUNED, "already gone")
            error = error.to_acm(change.subject)
        return Result(change, Outcome.FAILED, error.message, _problem(change, error))

    def _without_request(
        self, change: Change, failed: set[ObjectId], problems: dict[ObjectId, Problem]
    ) -> Result | None:
        """The result of a change that needs no request, or None for one that does."""
        if (
            self.options.dry_run
            and change.action is Action.CREATE
            and (change.id.namespace in self._new_namespaces)
        ):
            return Result(
                change, Outcome.CREATED, "not validated: its namespace would be created by this sync"
            )
        if change.action is Action.UNCHANGED:
            return Result(change, Outcome.UNCHANGED)
        if change.action is Action.SKIP:
            return Result(change, Outcome.SKIPPED, change.reason, problems.get(change.id))
        blocked = [d for d in change.depends_on if d in failed]
        if blocked:
            error = AcmError(
                errors.DEPENDENCY_FAILED, f"not applied: {blocked[0]}, which it depends on, failed"
            )
            return Result(change, Outcome.SKIPPED, error.message, _problem(change, error))
        unready = [d for d in change.depends_on if d in self._not_current]
        if unready:
            error = AcmError(errors.DEPENDENCY_FAILED, self._not_ready(change.id, unready[0]))
            return Result(change, Outcome.SKIPPED, error.message, _problem(change, error))
        return None

    def _not_ready(self, dependent: ObjectId, dependency: ObjectId) -> str:
        seen = self._not_current[dependency]
        detail = seen.status.value + (f" ({seen.reason})" if seen.reason else "")
        if seen.message:
            detail += f": {seen.message}"
        if seen.status is Status.FAILED:
            why = f"is {detail}"
        else:
            why = f"is not Current after {self.options.reconcile_timeout:g}s: {detail}"
        return f"not applied: {dependency}, which {dependent} depends on, {why}"

    def _await_dependencies(self, wave: list[Result], later: list[Change]) -> None:
        """Wait until the objects of this level that later changes depend on (and that are to be
        applied) are Current, as Config Sync's applier waits for a dependency to reconcile; those
        that are Failed, or not Current within the reconcile timeout, are remembered, and their
        dependents are skipped. Objects left unchanged that were Current when listed are not read
        again; a dry run does not wait."""
        if self.options.dry_run:
            return
        named = {d for c in later if c.action in (Action.CREATE, Action.UPDATE) for d in c.depends_on}
        targets = []
        for r in wave:
            change = r.change
            if change.id not in named or change.manifest is None:
                continue
            if r.outcome is Outcome.UNCHANGED and health.compute(change.live).status is Status.CURRENT:
                continue
            if r.outcome in (Outcome.CREATED, Outcome.CONFIGURED, Outcome.UNCHANGED):
                try:
                    targets.append(waiting.Target(change, self._resource(change)))
                except AcmError as e:  # no longer served: it cannot be read, so it is not Current
                    self._not_current[change.id] = Health(Status.UNKNOWN, e.code.name, e.message)
        if not targets:
            return
        try:
            waited = waiting.wait(
                self.cluster,
                targets,
                self.options.reconcile_timeout,
                selector=self.options.selector,
                fail_fast=False,
            )
        except AcmError as e:  # the API server went away while we waited
            self._not_current.update({t.id: Health(Status.UNKNOWN, e.code.name, e.message) for t in targets})
            return
        self._not_current.update({t.id: waited.health[t.id] for t in waited.unsettled})

    def _wave(
        self, changes: list[Change], failed: set[ObjectId], problems: dict[ObjectId, Problem]
    ) -> list[Result]:
        """One level's changes, their requests sent side by side; each result is reported as
        soon as it is known."""
        results: list[Result] = []
        sending: list[tuple[Change, Call]] = []
        for change in changes:
            result = self._without_request(change, failed, problems)
            if result is None:
                try:
                    sending.append((change, self._call(change)))
                    continue
                except AcmError as e:  # a kind the API server does not serve
                    result = Result(change, Outcome.FAILED, e.message, _problem(change, e))
            results.append(result)
            self.on_result(result)
        settled: list[Result | None] = [None] * len(sending)

        def answered(position: int, error: ApiError | AcmError | None) -> None:
            result = settled[position] = self._settled(sending[position][0], error)
            self.on_result(result)

        self.cluster.request_many([call for _, call in sending], self.options.concurrency, on_answer=answered)
        results += [r for r in settled if r is not None]
        for result in results:
            if result.outcome in (Outcome.FAILED, Outcome.SKIPPED) and result.problem:
                failed.add(result.change.id)
        return results

    def _after_level(self, results: list[Result]) -> tuple[list[Result], AcmError | None]:
        """Wait for the CRDs this level applied, and for those it left unchanged that were not
        Established when listed. Returns the new results of those that did not become
        Established and the error that postpones every later level (None: go on)."""
        crds = {
            r.change.id.name: r
            for r in results
            if r.change.id.group_kind == kinds.CRD
            and (
                r.outcome in (Outcome.CREATED, Outcome.CONFIGURED)
                or (r.outcome is Outcome.UNCHANGED and not wait.is_established(r.change.live or {}))
            )
        }
        if not crds or self.options.dry_run:
            return [], None
        timeout = self.options.crd_timeout
        try:
            pending = wait.not_established(self.cluster, sorted(crds), timeout)
            if not pending:
                self.discovery.refresh()
                return [], None
        except AcmError as e:  # the API server failed while we waited
            return [], e
        stuck = []
        for name in pending:
            change = crds[name].change
            why = wait.why_not_established(self.cluster, name)
            error = AcmError(
                errors.CRD_NOT_ESTABLISHED,
                f"not Established after {timeout:g}s" + (f": {why}" if why else ""),
            )
            stuck.append(Result(change, Outcome.FAILED, error.message, _problem(change, error)))
        return stuck, AcmError(
            errors.CRD_NOT_ESTABLISHED, f"CRDs not Established after {timeout:g}s: {', '.join(pending)}"
        )

    def _postponed(
        self, change: Change, cause: AcmError, failed: set[ObjectId], problems: dict[ObjectId, Problem]
    ) -> Result:
        """The result of a change of a level after one whose CRDs are not Established: not
        sent, and reported with a code (changes that need no request keep their result)."""
        if change.action in (Action.UNCHANGED, Action.SKIP):
            result = self._without_request(change, failed, problems)
            if result is not None:
                return result
        verb = "pruned" if change.action is Action.PRUNE else "applied"
        error = AcmError(
            errors.APPLY_POSTPONED, f"not {verb}: {cause.message}", hint="retried on the next pass"
        )
        return Result(change, Outcome.SKIPPED, error.message, _problem(change, error))

    def run(self, changeset: ChangeSet) -> list[Result]:
        self._new_namespaces = {
            c.id.name for c in changeset.of(Action.CREATE) if c.id.group_kind == kinds.NAMESPACE
        }
        problems = {
            ObjectId(**{k: p.obj[k] for k in ("group", "kind", "namespace", "name")}): p
            for p in changeset.problems
            if p.obj
        }
        failed: set[ObjectId] = set()
        results: list[Result] = []

        def removal(c: Change) -> bool:  # objects that left the source go last, in reverse
            return c.action is Action.PRUNE or (c.action is Action.UNMANAGE and c.manifest is None)

        forward = [c for c in changeset.changes if not removal(c)]
        backward = [c for c in changeset.changes if removal(c)]
        depending = [c for c in forward if c.depends_on]  # most commits: none, and no waits
        self._not_current = {}
        for number, level in groupby(sorted(forward, key=lambda c: c.level), key=lambda c: c.level):
            wave = self._wave(list(level), failed, problems)
            stuck, cause = self._after_level(wave)
            if depending and cause is None:
                self._await_dependencies(wave, [c for c in depending if c.level > number])
            replaced = {r.change.id for r in stuck}
            results += [r for r in wave if r.change.id not in replaced] + stuck
            for result in stuck:
                self.on_result(result)
            if cause is not None:  # nothing later may run against CRDs that are not there
                later = [c for c in forward if c.level > number] + backward
                postponed = [self._postponed(c, cause, failed, problems) for c in later]
                for result in postponed:
                    self.on_result(result)
                return results + postponed
        if any(
            r.problem and r.problem.code.category is Category.TRANSIENT and r.outcome is Outcome.FAILED
            for r in results
        ):
            skipped = [
                Result(c, Outcome.SKIPPED, "prune postponed: the API server failed during apply")
                for c in backward
            ]
            for r in skipped:
                self.on_result(r)
            return results + skipped
        ordered = sorted(backward, key=lambda c: -c.level)
        for _, level in groupby(ordered, key=lambda c: c.level):
            results += self._wave(list(level), failed, problems)
        return results
