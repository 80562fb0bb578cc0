"""How every Kafka client Portico makes connects: plaintext, TLS, or SCRAM over TLS.

One :class:`KafkaSecurity` value (built from :class:`meshkit.config.events.KafkaSettings`) gives the
keyword arguments of the raw aiokafka clients (:meth:`KafkaSecurity.client_kwargs`) and the
``security=`` object of the FastStream broker (:meth:`KafkaSecurity.faststream`), so a producer, a
consumer and an admin client of the same process can never disagree. The password stays a
``SecretStr`` until the moment a client is built and is never part of a ``repr``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

if TYPE_CHECKING:
    from faststream.security import BaseSecurity

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_SSL"]
Mechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSecurityError(ValueError):
    """The settings describe a connection that cannot work (say, SASL without a password)."""


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: SecurityProtocol = "PLAINTEXT"
    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None  # a client certificate, for brokers that require one
    key_file: Path | None = None
    mechanism: Mechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise KafkaSecurityError("a Kafka client certificate needs both its certificate and key file")
        if self.protocol == "SASL_SSL":
            self._credentials()

    @property
    def uses_tls(self) -> bool:
        return self.protocol != "PLAINTEXT"

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """Verifies the broker's certificate and host name (a file is read once per value)."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``AIOKafkaProducer``/``Consumer``/``AdminClient``/``Client``."""
        if not self.uses_tls:
            return {}
        kwargs: dict[str, Any] = {"security_protocol": self.protocol, "ssl_context": self.ssl_context}
        if self.protocol == "SASL_SSL":
            username, password = self._credentials()
            kwargs |= {
                "sasl_mechanism": self.mechanism,
                "sasl_plain_username": username,
                "sasl_plain_password": password,
            }
        return kwargs

    def faststream(self) -> BaseSecurity | None:
        """The ``security=`` of a FastStream ``KafkaBroker`` (None: plaintext)."""
        from faststream.security import BaseSecurity, SASLScram256, SASLScram512

        if not self.uses_tls:
            return None
        if self.protocol == "SSL":
            return BaseSecurity(ssl_context=self.ssl_context, use_ssl=True)
        scram = SASLScram256 if self.mechanism == "SCRAM-SHA-256" else SASLScram512
        return scram(*self._credentials(), ssl_context=self.ssl_context, use_ssl=True)

    def _credentials(self) -> tuple[str, str]:
        if not self.username or self.password is None:
            raise KafkaSecurityError("SASL_SSL needs a Kafka username and password")
        return self.username, self.password.get_secret_value()


PLAINTEXT = KafkaSecurity()
