"""The rendered broker configuration: one node, a cluster's nodes, and a TLS/SCRAM node."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import kafka_server
from infra.kafka_server import KafkaLayout, KafkaTls


def _properties(layout: KafkaLayout) -> dict[str, str]:
    text = kafka_server.write_properties(layout).read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_a_single_node_is_plaintext_and_unreplicated(tmp_path: Path) -> None:
    props = _properties(KafkaLayout(port=9092, controller_port=9093, data_dir=tmp_path))
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("1", "1")
    assert not any(key.startswith("ssl.") for key in props)


def test_cluster_nodes_share_the_quorum_and_replicate_three_times(tmp_path: Path) -> None:
    nodes = kafka_server.cluster_layouts(9092, 9093, 3, tmp_path)
    assert [(n.node_id, n.port, n.controller_port) for n in nodes] == [
        (1, 9092, 9093),
        (2, 9094, 9095),
        (3, 9096, 9097),
    ]
    assert len({n.cluster_id for n in nodes}) == 1
    props = _properties(nodes[1])
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    for key in ("default.replication.factor", "offsets.topic.replication.factor"):
        assert props[key] == "3"
    assert props["min.insync.replicas"] == props["transaction.state.log.min.isr"] == "2"
    assert kafka_server.cluster_bootstrap(9092, 3) == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"


def test_tls_node_serves_tls_and_scram_and_keeps_a_plaintext_internal_listener(tmp_path: Path) -> None:
    for name in ("ca.crt", "server.crt", "server.key"):
        (tmp_path / name).write_text(f"-----{name}-----\n")
    tls = KafkaTls(
        ca_file=tmp_path / "ca.crt",
        cert_file=tmp_path / "server.crt",
        key_file=tmp_path / "server.key",
        internal_port=9094,
        sasl_port=9095,
        scram_users=(("svc", "pw"),),
    )
    layout = KafkaLayout(port=9092, controller_port=9093, data_dir=tmp_path / "kafka", tls=tls)
    props = _properties(layout)
    assert props["listener.security.protocol.map"] == (
        "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,CLIENT:SSL,SASL:SASL_SSL"
    )
    assert props["inter.broker.listener.name"] == "INTERNAL"
    assert props["ssl.keystore.type"] == props["ssl.truststore.type"] == "PEM"
    assert layout.keystore_file.read_text() == "-----server.key-----\n-----server.crt-----\n"
    assert "ScramLoginModule" in props["listener.name.sasl.scram-sha-512.sasl.jaas.config"]
    assert layout.probe_bootstrap == "127.0.0.1:9094"


@pytest.mark.parametrize(("value", "brokers"), [("", 1), ("3", 3)])
def test_local_brokers_from_the_environment(value: str, brokers: int) -> None:
    assert kafka_server.local_brokers({"PORTICO_KAFKA_BROKERS": value}) == brokers


@pytest.mark.parametrize("value", ["0", "six", "9"])
def test_a_bad_broker_count_is_refused(value: str) -> None:
    with pytest.raises(RuntimeError, match="PORTICO_KAFKA_BROKERS"):
        kafka_server.local_brokers({"PORTICO_KAFKA_BROKERS": value})
