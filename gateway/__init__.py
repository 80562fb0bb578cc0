"""Portico's edge gateway: public REST/JSON in, internal gRPC out."""
