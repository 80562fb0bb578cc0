"""The auth backend's metrics through real flows (users + auth, Redis, Kafka): login outcomes, refresh-token
replays, and the lag of its user-event consumer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.auth import AuthStack, auth_stack_fixture
from harness.backends import metric_value
from harness.infra import InfraEnv
from harness.processes import wait_until
from infra.local import free_port
from stubs.auth.v1 import auth_pb2

pytestmark = pytest.mark.infra
PASSWORD = "saffron-Harbor-19"  # noqa: S105 (a test password)
LOGINS = "portico_auth_logins_total"
REUSE = "portico_auth_refresh_reuse_detected_total"


@pytest.fixture(scope="module")
def metrics_port() -> int:
    # Taken when the module's stack starts, not when the session collects: a port found free at
    # collection may be anybody's minutes later (CI: "Address already in use").
    return free_port()


@pytest.fixture(scope="module")
def stack(
    infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory, metrics_port: int
) -> Iterator[AuthStack]:
    yield from auth_stack_fixture(
        infra,
        Path(tmp_path_factory.mktemp("auth-metrics")),
        {
            "PORTICO_AUTH_METRICS_PORT": str(metrics_port),
            "PORTICO_AUTH_REFRESH_REUSE_GRACE_SECONDS": "0",  # any second use is a replay
            "PORTICO_AUTH_LOGIN_ACCOUNT_LIMIT": "2",
            "PORTICO_CONSUMER_LAG_INTERVAL": "0.5",
        },
    )


@pytest.fixture
def tenant() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


def logins(port: int, outcome: str) -> float:
    return metric_value(port, LOGINS, {"outcome": outcome})


def failed_login(stack: AuthStack, tenant: str, identifier: str, password: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stack.login(tenant, identifier, password)
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_login_outcomes_are_counted(stack: AuthStack, tenant: str, metrics_port: int) -> None:
    stack.register(tenant, "olga", PASSWORD)
    before = {
        o: logins(metrics_port, o) for o in ("succeeded", "invalid_credentials", "locked", "invalid_request")
    }
    stack.login(tenant, "olga", PASSWORD)
    failed_login(stack, tenant, "olga", "not-her-password")
    failed_login(stack, tenant, "nobody-here", PASSWORD)
    assert logins(metrics_port, "succeeded") == before["succeeded"] + 1
    assert (
        logins(metrics_port, "invalid_credentials") == before["invalid_credentials"] + 2
    )  # wrong password, unknown user
    failed_login(stack, tenant, "olga", "still-not-hers")  # the second failure locks the account
    failed_login(stack, tenant, "olga", PASSWORD)
    assert logins(metrics_port, "locked") == before["locked"] + 1
    with pytest.raises(grpc.RpcError):
        stack.login(tenant, "", PASSWORD)
    assert logins(metrics_port, "invalid_request") == before["invalid_request"] + 1


def test_a_replayed_refresh_token_is_counted_once(stack: AuthStack, tenant: str, metrics_port: int) -> None:
    spent = stack.register(tenant, "remi", PASSWORD).refresh_token
    before = metric_value(metrics_port, REUSE)
    channel, auth = stack.auth()
    with channel:
        auth.Refresh(auth_pb2.RefreshRequest(refresh_token=spent), timeout=10)
        assert metric_value(metrics_port, REUSE) == before  # a rotation is not a reuse
        with pytest.raises(grpc.RpcError) as err:
            auth.Refresh(auth_pb2.RefreshRequest(refresh_token=spent), timeout=10)
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert metric_value(metrics_port, REUSE) == before + 1


def lag_by_partition(port: int, group: str) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        sample.labels["partition"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "portico_kafka_consumer_lag" and sample.labels["group"] == group
    }


def test_the_user_event_consumer_reports_its_lag(stack: AuthStack, tenant: str, metrics_port: int) -> None:
    stack.register(tenant, "lena", PASSWORD)  # a user.created event: the topic exists
    group = f"portico-auth-{stack.auth_target.rpartition(':')[2]}"  # the stack's own consumer group
    wait_until(lambda: bool(lag_by_partition(metrics_port, group)), 30, "the auth backend's consumer lag")
    # The consumer keeps up with a handful of events: the lag comes back to 0 on every partition.
    wait_until(
        lambda: set(lag_by_partition(metrics_port, group).values()) == {0.0}, 30, "lag 0 on every partition"
    )
