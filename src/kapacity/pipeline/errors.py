"""Errors raised while building a task from a TICKscript.

::

    TickError                 (kapacity.tick.errors)
     └── PipelineError        the script parses but cannot run: an unsupported node,
                              an unknown property or chain method, a bad argument
"""

from __future__ import annotations

from kapacity.tick.errors import TickError


class PipelineError(TickError):
    """A task-building error at ``line``:``col`` of the script."""
