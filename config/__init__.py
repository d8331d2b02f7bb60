"""How the engine is configured and connected: settings from the environment, the Temporal client.

Neutral ground below the worker, the CLI and the gateway (and above the model), so none of them
imports another for its settings.
"""

from .settings import Settings
from .temporal import DATA_CONVERTER, connect, data_converter

__all__ = ["DATA_CONVERTER", "Settings", "connect", "data_converter"]
