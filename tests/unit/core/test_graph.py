"""The object graph (`engine/graph.py`): linking references into hard and soft dependencies,
breaking cycles, and strongly connected components on known, random and very long graphs."""

from __future__ import annotations

import graphlib
import random
from typing import Any

import pytest

from braintrust_migrate.engine.graph import Key, Node, link, strongly_connected
from braintrust_migrate.engine.resources import RESOURCE_TYPES


def rt_of(kind: str) -> Any:
    return next(rt for rt in RESOURCE_TYPES if rt.kind == kind)


def node(kind: str, src_id: str, in_project: str | None = "p1", **body: Any) -> Node:
    """A node of `kind`; `in_project` is the source project id it belongs to (None: org scope)."""
    return Node(
        rt_of(kind), {"id": src_id, "name": src_id, **body}, in_project and f"name-{in_project}", in_project
    )


def graph(*nodes: Node) -> dict[Key, Node]:
    return {n.key: n for n in nodes}


def prompt(src_id: str, *tools: str, project_id: str = "p1") -> Node:
    return node(
        "prompt",
        src_id,
        project_id,
        prompt_data={"tool_functions": [{"type": "function", "id": t} for t in tools]},
    )


def function(src_id: str, *tools: str, project_id: str = "p1") -> Node:
    return node(
        "function",
        src_id,
        project_id,
        prompt_data={"tool_functions": [{"type": "function", "id": t} for t in tools]},
    )


# --- link -----------------------------------------------------------------------------------


def test_a_reference_in_the_same_project_is_a_dependency() -> None:
    nodes = graph(prompt("pr", "fn"), function("fn"))
    link(nodes)
    assert nodes[("prompt", "pr")].deps == {("function", "fn")}
    assert nodes[("prompt", "pr")].soft == set()
    assert nodes[("function", "fn")].deps == set()


def test_a_reference_across_projects_is_soft() -> None:
    nodes = graph(prompt("pr", "fn", project_id="p1"), function("fn", project_id="p2"))
    link(nodes)
    assert nodes[("prompt", "pr")].deps == set()
    assert nodes[("prompt", "pr")].soft == {("function", "fn")}


def test_a_reference_to_an_org_object_is_a_dependency_from_any_project() -> None:
    nodes = graph(node("experiment", "e1", "p1", project_id="proj"), node("project", "proj", None))
    link(nodes)
    assert nodes[("experiment", "e1")].deps == {("project", "proj")}


def test_an_org_object_referencing_a_project_object_is_soft() -> None:
    nodes = graph(node("project", "proj", None), node("experiment", "e1", "proj"))
    nodes[("project", "proj")].src["settings"] = {"baseline_experiment_id": "e1"}
    link(nodes)
    project_node = nodes[("project", "proj")]
    # Whichever owner the table gives the settings reference, it must never be a hard wait.
    assert ("experiment", "e1") not in project_node.deps


def test_a_self_reference_is_soft() -> None:
    nodes = graph(function("fn", "fn"))
    link(nodes)
    assert nodes[("function", "fn")].deps == set()
    assert nodes[("function", "fn")].soft == {("function", "fn")}


def test_a_reference_outside_the_run_is_ignored() -> None:
    nodes = graph(prompt("pr", "not-in-run"))
    link(nodes)
    assert nodes[("prompt", "pr")].deps == set() and nodes[("prompt", "pr")].soft == set()


def test_a_function_reference_may_name_a_prompt() -> None:
    # Prompts and functions share one id space.
    nodes = graph(prompt("pr", "other"), prompt("other"))
    link(nodes)
    assert nodes[("prompt", "pr")].deps == {("prompt", "other")}


# --- cycles ---------------------------------------------------------------------------------


def test_prompt_function_cycle_defers_the_function_side() -> None:
    nodes = graph(prompt("pr", "fn"), function("fn", "pr"))
    link(nodes)
    fn, pr = nodes[("function", "fn")], nodes[("prompt", "pr")]
    # The function is written first and gets its reference patched in; the prompt is written complete.
    assert (fn.deps, fn.soft) == (set(), {("prompt", "pr")})
    assert (pr.deps, pr.soft) == ({("function", "fn")}, set())


def test_same_kind_cycle_is_broken_by_source_id() -> None:
    nodes = graph(function("b", "a"), function("a", "b"))
    link(nodes)
    a, b = nodes[("function", "a")], nodes[("function", "b")]
    assert (a.deps, a.soft) == (set(), {("function", "b")})
    assert (b.deps, b.soft) == ({("function", "a")}, set())


def test_three_cycle_of_experiments() -> None:
    e = [node("experiment", f"e{i}", "p1", base_exp_id=f"e{(i + 1) % 3}") for i in range(3)]
    nodes = graph(*e)
    link(nodes)
    assert [(n.deps, n.soft) for n in e] == [
        (set(), {("experiment", "e1")}),
        (set(), {("experiment", "e2")}),
        ({("experiment", "e0")}, set()),
    ]


@pytest.mark.parametrize("seed", range(40))
def test_link_leaves_an_acyclic_graph_and_loses_no_edge(seed: int) -> None:
    rng = random.Random(seed)
    ids = [f"n{i}" for i in range(9)]
    nodes = graph(
        *(
            (prompt if rng.random() < 0.4 else function)(
                src, *rng.sample(ids, rng.randint(0, 3)), project_id=rng.choice(["p1", "p1", "p2"])
            )
            for src in ids
        )
    )
    wanted: dict[Key, set[Key]] = {}
    for n in nodes.values():
        targets = [t["id"] for t in n.src["prompt_data"]["tool_functions"]]
        wanted[n.key] = {k for t in targets for k in nodes if k[1] == t}
    link(nodes)
    for n in nodes.values():
        assert n.deps | n.soft == wanted[n.key]
        assert not n.deps & n.soft
        assert all(nodes[d].project_id in (n.project_id, None) for d in n.deps)
    # graphlib is the independent judge: it raises CycleError on any cycle left.
    order = list(graphlib.TopologicalSorter({k: n.deps for k, n in nodes.items()}).static_order())
    assert set(order) == set(nodes)


# --- strongly_connected ---------------------------------------------------------------------


def raw(edges: dict[str, list[str]]) -> dict[Key, Node]:
    """Nodes with `deps` set directly (no references walked)."""
    nodes = {}
    for name in set(edges) | {t for ts in edges.values() for t in ts}:
        n = node("experiment", name)
        n.deps = {("experiment", t) for t in edges.get(name, [])}
        nodes[n.key] = n
    return nodes


def components(nodes: dict[Key, Node]) -> set[frozenset[str]]:
    return {frozenset(k[1] for k in c) for c in strongly_connected(nodes)}


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": []}, [{"a"}]),
        ({"a": ["a"]}, [{"a"}]),
        ({"a": ["b"], "b": ["a"]}, [{"a", "b"}]),
        ({"a": ["b"], "b": ["c"]}, [{"a"}, {"b"}, {"c"}]),
        (
            {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": ["e"], "e": ["d"], "f": []},
            [{"a", "b", "c"}, {"d", "e"}, {"f"}],
        ),
        ({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}, [{"a"}, {"b"}, {"c"}, {"d"}]),  # a diamond
        ({"a": ["b"], "b": ["c"], "c": ["a"], "x": ["a"], "a2": ["x"]}, [{"a", "b", "c"}, {"x"}, {"a2"}]),
    ],
)
def test_known_graphs(edges: dict[str, list[str]], expected: list[set[str]]) -> None:
    assert components(raw(edges)) == {frozenset(c) for c in expected}


def test_components_come_dependencies_first() -> None:
    nodes = raw({"a": ["b"], "b": ["a", "c"], "c": ["d"], "d": ["c"]})
    order = [frozenset(k[1] for k in c) for c in strongly_connected(nodes)]
    assert order.index(frozenset({"c", "d"})) < order.index(frozenset({"a", "b"}))


def test_dependencies_outside_the_nodes_are_ignored() -> None:
    nodes = raw({"a": ["b"]})
    nodes[("experiment", "a")].deps.add(("experiment", "ghost"))
    assert components(nodes) == {frozenset({"a"}), frozenset({"b"})}


def reachability_components(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    """The oracle: two nodes share a component iff each reaches the other."""
    reach: dict[str, set[str]] = {}
    for start in edges:
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = seen
    return {frozenset(b for b in edges if b in reach[a] and a in reach[b]) for a in edges}


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_match_reachability(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"v{i}" for i in range(rng.randint(1, 12))]
    edges = {n: {m for m in names if rng.random() < 0.18} for n in names}
    nodes = raw({n: sorted(ts) for n, ts in edges.items()})
    found = strongly_connected(nodes)
    assert sorted(k for c in found for k in c) == sorted(nodes)  # each node exactly once
    assert {frozenset(k[1] for k in c) for c in found} == reachability_components(edges)


def test_a_chain_of_ten_thousand_has_no_recursion_limit() -> None:
    n = 10_000
    nodes = raw({f"n{i}": [f"n{i + 1}"] for i in range(n - 1)})
    found = strongly_connected(nodes)
    assert len(found) == n and all(len(c) == 1 for c in found)
    assert found[0] == [("experiment", f"n{n - 1}")]  # the deepest dependency first


def test_a_cycle_of_ten_thousand_is_one_component_and_link_breaks_it() -> None:
    n = 10_000
    chain = [node("experiment", f"e{i:05d}", "p1", base_exp_id=f"e{(i + 1) % n:05d}") for i in range(n)]
    nodes = graph(*chain)
    link(nodes)
    # Observed rule: inside a component every edge toward a higher rank (same kind: a later id)
    # is deferred, not a minimal set; only the last member keeps its edge back to the first.
    hard = [(n_.key, n_.deps) for n_ in chain if n_.deps]
    assert hard == [(("experiment", f"e{n - 1:05d}"), {("experiment", "e00000")})]
    assert sum(len(n_.soft) for n_ in chain) == n - 1
    assert len(list(graphlib.TopologicalSorter({k: v.deps for k, v in nodes.items()}).static_order())) == n


def test_strongly_connected_on_a_long_cycle() -> None:
    n = 10_000
    nodes = raw({f"n{i}": [f"n{(i + 1) % n}"] for i in range(n)})
    (only,) = strongly_connected(nodes)
    assert len(only) == n
