"""Configuration: a kapacitor.conf-style file (TOML, or YAML with the same keys).

>>> from kapacity.config import parse_config
>>> parse_config('hostname = "alerts-1"').hostname
'alerts-1'

Durations are integer nanoseconds. Secrets are :class:`pydantic.SecretStr`.
"""

from kapacity.config.durations import DurationNs, parse_duration
from kapacity.config.errors import ConfigError, ConfigProblem, FieldPath, UnknownClusterError
from kapacity.config.kafka import SASL_MECHANISMS, KafkaClusterConfig
from kapacity.config.files import check_files
from kapacity.config.loader import Format, format_for, load_config, parse_config, validate_config
from kapacity.config.model import AlertConfig, Config, ConfigSource, HttpConfig, LoggingConfig

__all__ = [
    "SASL_MECHANISMS",
    "AlertConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "ConfigSource",
    "DurationNs",
    "FieldPath",
    "Format",
    "HttpConfig",
    "KafkaClusterConfig",
    "LoggingConfig",
    "UnknownClusterError",
    "check_files",
    "format_for",
    "load_config",
    "parse_config",
    "parse_duration",
    "validate_config",
]
