"""Scalars as YAML 1.2 writes them: no coercion of "no", "on" or "1" into booleans or integers."""

from typing import Annotated

from pydantic import Strict

Bool = Annotated[bool, Strict()]
"""true or false only: `no`, `on` or "yes" are strings, not booleans."""
Int = Annotated[int, Strict()]
"""An integer as written, never a string or a boolean coerced into one."""
