"""The harness's process and backend helpers against real processes and servers on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry, Counter, start_http_server

from harness.backends import BackendProcess, backend_env, health_status, metric_value, spawn_backend
from harness.processes import spawn, wait_until
from harness.stores.databases import ROOT
from infra.paths import REPO_ROOT
from infra.procs import free_port


def test_a_process_runs_from_the_checkout_and_reports_its_exit_code(tmp_path: Path) -> None:
    program = "import os, sys; print(os.getcwd(), os.environ['GREETING']); sys.exit(3)"
    proc = spawn("hello", ["-c", program], {"GREETING": "hi"}, tmp_path)
    wait_until(lambda: proc.popen.poll() is not None, 20, "the program to exit")
    assert proc.terminate() == 3
    assert proc.log() == f"{REPO_ROOT} hi\n"


def test_a_restart_under_the_same_name_starts_a_new_log(tmp_path: Path) -> None:
    for word in ("first", "second"):
        proc = spawn("same", ["-c", f"print({word!r})"], {}, tmp_path)
        assert proc.popen.wait(20) == 0
    assert proc.log() == "second\n"


def test_terminate_stops_a_process_that_ignores_nothing(tmp_path: Path) -> None:
    proc = spawn("sleeper", ["-c", "import time; print('up', flush=True); time.sleep(60)"], {}, tmp_path)
    wait_until(lambda: "up" in proc.log(), 20, "the sleeper to start")
    assert proc.terminate(timeout=5) == -15  # SIGTERM


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(TimeoutError, match="the impossible"):
        wait_until(lambda: False, 0.3, "the impossible", interval=0.05)


def test_a_backend_gets_its_ports_from_its_name() -> None:
    assert backend_env("posts", 5001, 9001) == {
        "PORTICO_POSTS_PORT": "5001",
        "PORTICO_POSTS_METRICS_PORT": "9001",
    }


def test_spawn_backend_runs_the_module_with_its_ports(tmp_path: Path) -> None:
    program = "import os; print(os.environ['PORTICO_SLOW_PORT'], os.environ['PORTICO_SLOW_METRICS_PORT'])"
    module = tmp_path / "print_ports.py"
    module.write_text(program)
    backend = spawn_backend("slow", {"PYTHONPATH": str(tmp_path)}, tmp_path, port=5123, module="print_ports")
    assert backend.proc.popen.wait(20) == 0
    assert backend.target == "127.0.0.1:5123"
    assert backend.proc.log() == f"5123 {backend.metrics_port}\n"
    assert backend.proc.log_path.name == "slow-5123.log"


@pytest.fixture
def health_server() -> Iterator[tuple[str, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(grace=None)


def test_health_status_reads_the_grpc_health_service(
    health_server: tuple[str, health.HealthServicer],
) -> None:
    target, servicer = health_server
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert health_status(target) == health_pb2.HealthCheckResponse.NOT_SERVING
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert health_status(target) == health_pb2.HealthCheckResponse.SERVING


def test_health_status_is_none_when_nothing_answers() -> None:
    assert health_status(f"127.0.0.1:{free_port()}") is None


def test_metric_value_matches_a_subset_of_the_labels(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    calls = Counter("portico_test_calls", "Calls.", ["method", "code"], registry=registry)
    calls.labels("Get", "OK").inc(2)
    calls.labels("Get", "NOT_FOUND").inc()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        assert metric_value(port, "portico_test_calls_total", {"code": "NOT_FOUND"}) == 1
        assert metric_value(port, "portico_test_calls_total", {"method": "Get", "code": "OK"}) == 2
        assert metric_value(port, "portico_test_calls_total", {"code": "INTERNAL"}) == 0
        idle = spawn("idle", ["-c", "pass"], {}, tmp_path)
        assert idle.popen.wait(20) == 0
        backend = BackendProcess("test", "127.0.0.1:1", port, idle)
        assert backend.metric("portico_test_calls_total", {"code": "OK"}) == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_paths_of_the_harness_point_at_the_checkout() -> None:
    assert ROOT == REPO_ROOT
    assert (ROOT / "backends" / "users" / "migrations").is_dir()


def test_spawn_backend_keeps_the_ports_its_environment_names(tmp_path: Path) -> None:
    (tmp_path / "noop.py").write_text("")
    env = {"PYTHONPATH": str(tmp_path), "PORTICO_SLOW_PORT": "5124", "PORTICO_SLOW_METRICS_PORT": "9124"}
    backend = spawn_backend("slow", env, tmp_path, module="noop")
    assert backend.proc.popen.wait(20) == 0
    assert (backend.target, backend.metrics_port) == ("127.0.0.1:5124", 9124)
