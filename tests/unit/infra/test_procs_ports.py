"""Free loopback ports for the processes the tests start: one, or a run of consecutive ones."""

from __future__ import annotations

import socket

import pytest

from infra.procs import ephemeral_port_floor, free_port, free_port_range, free_ports, peer_port_range


def test_a_range_is_consecutive_free_ports_and_skips_a_taken_one() -> None:
    base = free_port_range(3)
    with socket.socket() as held:  # take the middle one: a new range must not include it
        held.bind(("127.0.0.1", base + 1))
        for port in (base, base + 2):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))  # free when it was handed out
        again = free_port_range(3)
        assert not again <= base + 1 < again + 3


def test_a_port_is_not_handed_out_twice_even_when_the_os_offers_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The OS may offer a just-closed port again at once (CI saw a broker's listener and controller
    # get the same one); stand in for that with a socket that offers the same port twice, then a new one.
    first = free_port()
    offered = iter([first, first, first + 1 if first < 65535 else first - 1])

    class Repeating(socket.socket):
        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", next(offered))

    monkeypatch.setattr(socket, "socket", Repeating)
    again = free_port()
    assert again != first


def test_ports_taken_together_are_distinct_and_not_handed_out_again() -> None:
    ports = free_ports(4)
    assert len(set(ports)) == 4
    assert not {free_port() for _ in range(8)} & set(ports)


def test_peer_ports_are_free_consecutive_and_below_the_source_port_range() -> None:
    base = peer_port_range(6)
    assert base + 6 <= ephemeral_port_floor()
    for port in range(base, base + 6):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
    assert peer_port_range(6) != base  # handed out once
