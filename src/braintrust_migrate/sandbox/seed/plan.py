"""The seed plan: every request the seed generator will send, as pure data.

Planning is a pure function of ``(profile, seed)``: all randomness is drawn here,
sequentially, from one ``random.Random(seed)``, so the same inputs give the same
names and contents whatever order the server later answers in.

A plan is a list of :class:`Op` (one HTTP request each). Request bodies hold
symbolic placeholders instead of ids:

* :class:`Ref` — a field (``id``, ``_xact_id``, ``name``, ``slug``…) of the object
  another op created;
* :class:`UserRef` / :class:`SystemRoleRef` / :class:`OrgRef` — things the org
  already has, discovered before execution (its users, the system roles, itself).

The executor (``seed.py``) derives dependency levels from those placeholders, so
ops only need to say what they reference; creation order follows automatically,
and a dependency cycle is expressed as "create A without the reference, create B
pointing at A, then PATCH A to point at B".

Events phase: ``plan_dataset_events`` adds, per dataset, two marker ops that
``events`` carries out (write the initial rows, read their ``_xact_id``
back), so :func:`dataset_xact` makes experiment ``dataset_version`` and snapshot
``xact_id`` point at a real transaction id; all other event rows are written
after the plan.

Layout: this module holds the public API and the order of the planning steps;
the steps live beside it, one module per area, as mixins of
:class:`~.plan_base.PlannerBase`:

* ``plan_model`` — placeholders, :class:`Op`, :class:`Plan`, :class:`Profile`;
* ``plan_base`` — shared helpers, the planner's state and body builders;
* ``plan_org`` — secrets, environments, roles, groups, members, org env vars;
* ``plan_project`` — datasets, tags, iframes, MCP servers, experiments,
  settings, scores, views, env vars, snapshots;
* ``plan_functions`` / ``plan_prompts`` — functions, the agent, prompts
  and the two reference cycles;
* ``plan_automations``, ``plan_acls``.
"""

from __future__ import annotations

from .names import PROJECT_WORDS
from .plan_acls import AclPlanner
from .plan_automations import AutomationPlanner
from .plan_base import (
    JS_SNIPPETS,
    PY_SNIPPETS,
    V1,
    ProjectCtx,
    dataset_xact,
    fn_ref,
    global_ref,
    plan_dataset_events,
    plan_experiment_events,
    plan_project_logs,
)
from .plan_functions import FunctionPlanner
from .plan_model import (
    PROFILES,
    Op,
    OrgRef,
    Placeholder,
    Plan,
    Profile,
    Ref,
    SystemRoleRef,
    UserRef,
    iter_placeholders,
)
from .plan_org import OrgPlanner
from .plan_project import ProjectPlanner
from .plan_prompts import PromptPlanner

# Everything that lived here before the split stays importable from here.
__all__ = [
    "JS_SNIPPETS",
    "PROFILES",
    "PY_SNIPPETS",
    "V1",
    "Op",
    "OrgRef",
    "Placeholder",
    "Plan",
    "Profile",
    "Ref",
    "SystemRoleRef",
    "UserRef",
    "build_plan",
    "dataset_xact",
    "fn_ref",
    "global_ref",
    "iter_placeholders",
    "plan_dataset_events",
    "plan_experiment_events",
    "plan_project_logs",
]


class _Planner(OrgPlanner, ProjectPlanner, FunctionPlanner, PromptPlanner, AutomationPlanner, AclPlanner):
    """Every planning step; :meth:`project` fixes their order, hence how the shared rng is consumed."""

    def project(self, i: int) -> None:
        P = f"p{i}"
        pname = self.names.awkward_project(i) if i % 2 == 1 else self.names.name(PROJECT_WORDS, i)
        self.add(
            P, "project", "POST", (V1 + "project",), {"name": pname, "description": f"Seeded project {i} 📦"}
        )
        self.project_keys.append(P)
        # Cross-project references go to the next project (the last wraps around to the first).
        # Ordering is per op, so two projects referring to each other form no cycle.
        c = ProjectCtx(i=i, P=P, other=f"p{(i + 1) % self.p.projects}")
        plan_project_logs(self.plan, P, self.rng)
        self._leaves(c)
        self._functions(c)
        self._agent(c)
        self._prompts(c)
        self._prompt_cycle(c)
        self._agent_cycle(c)
        self._experiments(c)
        self._origin_functions(c)
        self._settings(c)
        self._scores(c)
        self._automations(c)
        self._views(c)
        self._env_vars(c)
        self._snapshots(c)
        self._acls(c)


def build_plan(profile: str | Profile, seed: int = 0) -> Plan:
    """The full, deterministic plan for ``profile`` and ``seed``."""
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    planner = _Planner(prof, seed)
    planner.org()
    for i in range(prof.projects):
        planner.project(i)
    planner.org_acls()
    return planner.plan
