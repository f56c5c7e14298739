"""dwml: dbt-integrated, warehouse-native machine learning.

The Python API mirrors the `dwml` command line; see the README.
"""

from dwml_py.errors import DwmlError
from dwml_py.versions import __version__

__all__ = ["DwmlError", "__version__", "resume_run", "start_run"]


def __getattr__(name):
    # start_run/resume_run pull in the warehouse layer: import them only when used
    if name in ("start_run", "resume_run"):
        from dwml_py import tracking

        return getattr(tracking, name)
    raise AttributeError(f"module 'dwml_py' has no attribute {name!r}")
