"""The warehouse layer: one class per engine behind one interface, Arrow in and out.

`connect(project)` opens the warehouse that the dbt profile/target points at.
"""

from dwml_py.warehouse.base import Warehouse
from dwml_py.warehouse.connect import SUPPORTED_ADAPTERS, connect

__all__ = ["Warehouse", "connect", "SUPPORTED_ADAPTERS"]
