"""Every module of the TICKscript language, the pipeline and the alert core imports first,
from a clean slate: no import cycle depends on which module a caller happens to import
first (``kapacity.alert.config`` before ``kapacity.pipeline`` once raised ImportError)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import kapacity.alert
import kapacity.pipeline
import kapacity.tick

# Runs in a fresh interpreter. Before each module it forgets every kapacity module, so each
# one is imported first, as in an interpreter of its own (third-party modules stay loaded:
# a cycle can only run through our own packages), at a fraction of the cost of one
# interpreter per module.
_PROBE = """
import importlib, json, sys
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "kapacity" or m.startswith("kapacity.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as err:
        failed[name] = f"{type(err).__name__}: {err}"
print(json.dumps(failed))
"""


def _modules() -> list[str]:
    names = []
    for pkg in (kapacity.alert, kapacity.pipeline, kapacity.tick):
        names.append(pkg.__name__)
        names += [m.name for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + ".")]
    return sorted(names)


def test_each_module_imports_first() -> None:
    modules = _modules()
    assert "kapacity.alert.config" in modules and "kapacity.pipeline.fused" in modules
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(modules)],
                          capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout) == {}
