"""Run configuration: a strict, versioned schema and its loader."""

from baseline.config.schema import RunConfig, load_config

__all__ = ["RunConfig", "load_config"]
