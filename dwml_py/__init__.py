"""dwml: dbt-integrated, warehouse-native machine learning.

The Python API mirrors the `dwml` command line; see the README.
"""

__version__ = "0.1.0"

from dwml_py.errors import DwmlError  # noqa: E402

__all__ = ["DwmlError", "__version__", "start_run"]


def __getattr__(name):
    # start_run pulls in the warehouse layer: import it only when it is used
    if name == "start_run":
        from dwml_py.tracking import start_run

        return start_run
    raise AttributeError(f"module 'dwml_py' has no attribute {name!r}")
