"""Lianchen's own common code: configuration, logging, storage, messaging helpers."""
