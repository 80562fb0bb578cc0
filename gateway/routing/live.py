"""The live route table: from the descriptor set at start (so the gateway serves at once, even offline),
then from the backends by server reflection, refreshed on an interval.

Each route goes to the backend whose reflection listed its service (not to one named after the
service's package), so a backend that serves a service in a new package gets working routes.

A refresh replaces the table only when every backend has answered at least once, their files changed
since the table was built, and the new table has no problems; a backend that gains an RPC gains its REST
route at the next refresh, with no gateway change. A backend that does not answer a refresh keeps the
routes of its last answer (its calls fail UNAVAILABLE meanwhile), so the others' changes still land.
Conflicts leave the previous table in force (and are logged).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2

from gateway.routing.sources import (
    DescriptorSourceError,
    fetch_files,
    load_descriptor_set,
    services_from_files,
)
from gateway.routing.table import RouteTable, build_table

log = logging.getLogger(__name__)

DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "stubs" / "portico.binpb"

Answer = tuple[list[str], list[descriptor_pb2.FileDescriptorProto]]  # served service names, their files


class LiveRoutes:
    def __init__(
        self, channels: Mapping[str, grpc.aio.Channel], descriptor_set: Path = DESCRIPTOR_SET
    ) -> None:
        self._channels = channels
        built = build_table(load_descriptor_set(descriptor_set), version=0)
        if built.table is None:
            raise RuntimeError(f"the descriptor set's routes are inconsistent: {built.problems}")
        self.table: RouteTable = built.table
        self.source = "descriptor set"
        self._version = 0
        self._fingerprint = b""  # of the files the reflected table was built from
        self._last: dict[str, Answer] = {}  # each backend's last answer to reflection

    async def refresh(self, timeout: float = 3.0) -> bool:
        """Rebuild from reflection; True when the table was replaced.

        Nothing is built when the backends answer with the same files as last time: resolving them
        in a fresh descriptor pool makes a cycle of pool and message classes that only a full garbage
        collection frees, and a gateway whose heap is large runs one rarely, so a rebuild every
        interval would hold a pool's worth of memory per refresh for hours.
        """
        fetched = await asyncio.gather(
            *(fetch_files(channel, timeout=timeout) for channel in self._channels.values()),
            return_exceptions=True,
        )
        failed = []
        for name, got in zip(self._channels, fetched, strict=True):
            if isinstance(got, BaseException):
                failed.append(name)
            else:
                self._last[name] = got
        never = [name for name in failed if name not in self._last]
        if never:
            log.info("route refresh skipped: backends never answered reflection", extra={"backends": never})
            return False
        if failed:
            log.info("backends not answering reflection keep their last routes", extra={"backends": failed})
        answers = [self._last[name] for name in self._channels]
        fingerprint = _fingerprint(answers)
        if fingerprint == self._fingerprint:
            return False
        try:
            served_by = _served_by(dict(zip(self._channels, (names for names, _ in answers), strict=True)))
            services = [s for names, files in answers for s in services_from_files(files, served=names)]
        except DescriptorSourceError as error:
            log.error("route refresh rejected; the previous table stays", extra={"problems": [str(error)]})
            return False
        built = build_table(services, version=self._version + 1, served_by=served_by)
        if built.table is None:
            log.error(
                "route refresh rejected; the previous table stays",
                extra={"problems": [str(p) for p in built.problems]},
            )
            return False
        added, removed = built.table.keys() - self.table.keys(), self.table.keys() - built.table.keys()
        if added or removed or self.source != "reflection":
            log.info(
                "routes updated", extra={"added": len(added), "removed": len(removed), "source": "reflection"}
            )
        self._version += 1
        self.table, self.source, self._fingerprint = built.table, "reflection", fingerprint
        return True

    async def refresh_forever(self, interval: float) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # a refresh must never take the gateway down
                log.exception("route refresh failed")
            await asyncio.sleep(interval)


def _served_by(listed: Mapping[str, list[str]]) -> dict[str, str]:
    """Service full name → the upstream that listed it. A service two backends both claim to serve
    cannot be routed to one of them without guessing, so it is a problem, not a pick."""
    served_by: dict[str, str] = {}
    for upstream, names in listed.items():
        for name in names:
            other = served_by.setdefault(name, upstream)
            if other != upstream:
                raise DescriptorSourceError(f"{name} is served by both {other} and {upstream}")
    return served_by


def _fingerprint(answers: list[Answer]) -> bytes:
    """A digest of every backend's served names and files, in the order of the channels."""
    digest = hashlib.sha256()
    for names, files in answers:
        digest.update(b"\0names\0" + "\0".join(sorted(names)).encode())
        for blob in sorted(f.SerializeToString(deterministic=True) for f in files):
            digest.update(len(blob).to_bytes(8, "big") + blob)
    return digest.digest()
