"""The embedded lab: a multi-region GPU inference fleet of real processes on one machine."""

from reliability.lab.config import LabConfig, lab_json_schema, load_lab_config
from reliability.lab.lab import Lab, down_from_state, reap_crashed

__all__ = ["Lab", "LabConfig", "down_from_state", "lab_json_schema", "load_lab_config", "reap_crashed"]
