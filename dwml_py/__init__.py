"""dwml: dbt-integrated, warehouse-native machine learning.

The Python API mirrors the `dwml` command line; see the README.
"""

__version__ = "0.1.0"

from dwml_py.errors import DwmlError  # noqa: E402

__all__ = ["DwmlError", "__version__"]
