"""The route table: every Route of every backend, indexed once per version for fast matching.

The index is a segment trie. At each position a literal child is tried before `*`, and `*` before a
trailing `**`, depth first, so `/api/v1/users/search` wins over `/api/v1/users/{user_id}` and a more
specific template over a less specific one. Matching costs one dict lookup per path segment (plus
backtracking only where a literal led nowhere); it does not scan the routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf.descriptor import ServiceDescriptor

from gateway.routing.rules import Route, RuleError, routes_for_method
from gateway.routing.template import SegmentKind, decode_segment, split_path


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    params: dict[str, str]  # field path -> percent-decoded value


@dataclass(frozen=True, slots=True)
class NoRoute:
    """No template matches the path (HTTP 404)."""


@dataclass(frozen=True, slots=True)
class MethodNotAllowed:
    """Templates match the path, but for other methods (HTTP 405 with `Allow`)."""

    allowed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two RPCs claim the same method and path shape; a request could not tell them apart."""

    http_method: str
    templates: tuple[str, ...]
    grpc_methods: tuple[str, ...]

    def __str__(self) -> str:
        claims = ", ".join(f"{t} -> {m}" for t, m in zip(self.templates, self.grpc_methods, strict=True))
        return f"route conflict on {self.http_method}: {claims}"


@dataclass(frozen=True, slots=True)
class InvalidRule:
    grpc_method: str
    reason: str

    def __str__(self) -> str:
        return f"invalid http rule on {self.grpc_method}: {self.reason}"


Problem = Conflict | InvalidRule


@dataclass(slots=True)
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    star: _Node | None = None
    # Routes whose template ends here, by HTTP method.
    routes: dict[str, Route] = field(default_factory=dict)
    # Routes whose template ends with `**` after this node: they match any remaining segments.
    tail_routes: dict[str, Route] = field(default_factory=dict)


class RouteTable:
    """An immutable, compiled set of routes. Build one with `build_table`; swap whole tables."""

    def __init__(self, routes: Sequence[Route], version: int) -> None:
        self.routes = tuple(sorted(routes, key=lambda r: (r.template, r.http_method)))
        self.version = version
        # One trie per verb: `:verb` is split off the last segment before the walk, and templates
        # without a verb live under "".
        self._tries: dict[str, _Node] = {}
        for route in self.routes:
            _insert(self._tries.setdefault(route.matcher.verb, _Node()), route)

    def keys(self) -> frozenset[tuple[str, str, str, str, str, str, str, str, str, bytes]]:
        """Comparable content of the table, e.g. to log what a refresh changed."""
        return frozenset(r.key() for r in self.routes)

    def match(self, method: str, path: str) -> Match | NoRoute | MethodNotAllowed:
        """Route a request: `path` is the raw (still percent-encoded) path without the query string."""
        allowed: set[str] = set()
        last = path.rpartition("/")[2]
        if ":" in last:
            verb = last.rpartition(":")[2]
            trie = self._tries.get(verb)
            raw = split_path(path, verb) if trie is not None else None
            if trie is not None and raw is not None:
                found = _walk(trie, raw, 0, method, allowed)
                if found is not None:
                    return found
        trie = self._tries.get("")
        raw = split_path(path, "")
        if trie is not None and raw is not None:
            found = _walk(trie, raw, 0, method, allowed)
            if found is not None:
                return found
        if allowed:
            return MethodNotAllowed(tuple(sorted(allowed)))
        return NoRoute()


@dataclass(frozen=True, slots=True)
class BuildResult:
    """The new table, or None with the problems that kept it from being built."""

    table: RouteTable | None
    problems: tuple[Problem, ...]
    unrouted: tuple[str, ...]  # RPCs with no http rule: not exposed over REST


def package_upstream(service: str) -> str:
    """The upstream a service is assumed to live on before any backend has said: its package's first
    segment (``users.v1.UserService`` → ``users``). Only the descriptor set's table, built before the
    first refresh, relies on it; the shipped contract is named that way."""
    return service.split(".", 1)[0]


def build_table(
    services: Iterable[ServiceDescriptor], version: int = 0, served_by: Mapping[str, str] | None = None
) -> BuildResult:
    """Compile the routes of `services`, each going to the upstream ``served_by`` names for it (the
    backend that reflected it; :func:`package_upstream` when None). Any problem means no table: the
    caller keeps its previous one, because serving a half-valid contract would silently drop or misroute
    some routes."""
    routes: list[Route] = []
    problems: list[Problem] = []
    unrouted: list[str] = []
    for service in services:
        name = service.full_name
        upstream = served_by[name] if served_by is not None else package_upstream(name)
        for method in service.methods:
            try:
                method_routes = routes_for_method(method, upstream)
            except RuleError as error:
                problems.append(InvalidRule(error.grpc_method, error.reason))
                continue
            if not method_routes:
                unrouted.append(f"/{service.full_name}/{method.name}")
            routes.extend(method_routes)
    problems.extend(_conflicts(routes))
    if problems:
        return BuildResult(None, tuple(problems), tuple(unrouted))
    return BuildResult(RouteTable(routes, version), (), tuple(unrouted))


def _conflicts(routes: Iterable[Route]) -> list[Conflict]:
    claims: dict[tuple[str, object], list[Route]] = {}
    for route in routes:
        claims.setdefault((route.http_method, route.matcher.shape()), []).append(route)
    return [
        Conflict(same[0].http_method, tuple(r.template for r in same), tuple(r.grpc_method for r in same))
        for same in claims.values()
        if len(same) > 1
    ]


def _insert(root: _Node, route: Route) -> None:
    node = root
    for segment in route.matcher.segments:
        if segment.kind is SegmentKind.LITERAL:
            node = node.literals.setdefault(segment.literal, _Node())
        elif segment.kind is SegmentKind.STAR:
            if node.star is None:
                node.star = _Node()
            node = node.star
        else:  # `**` is always last (the parser enforces it)
            node.tail_routes[route.http_method] = route
            return
    node.routes[route.http_method] = route


def _walk(node: _Node, raw: list[str], i: int, method: str, allowed: set[str]) -> Match | None:
    """Depth-first in precedence order; collects the methods of matching templates for a 405."""
    if i == len(raw):
        found = _pick(node.routes, raw, method, allowed)
        if found is not None:
            return found
    else:
        segment = raw[i]
        child = node.literals.get(segment)
        if child is None and "%" in segment:
            # Literals are stored decoded; only an escaped segment needs decoding to compare.
            child = node.literals.get(_decoded(segment))
        if child is not None:
            found = _walk(child, raw, i + 1, method, allowed)
            if found is not None:
                return found
        if node.star is not None and segment:
            found = _walk(node.star, raw, i + 1, method, allowed)
            if found is not None:
                return found
    if node.tail_routes:
        return _pick(node.tail_routes, raw, method, allowed)
    return None


def _pick(routes: dict[str, Route], raw: list[str], method: str, allowed: set[str]) -> Match | None:
    route = routes.get(method)
    if route is not None:
        params = route.matcher.bind(raw)
        if params is not None:
            return Match(route, params)
        # A value the template refuses (e.g. `%2F` in a single segment) is not this route's path.
        return None
    allowed.update(routes)
    return None


def _decoded(segment: str) -> str:
    try:
        return decode_segment(segment)
    except UnicodeDecodeError:
        return segment
