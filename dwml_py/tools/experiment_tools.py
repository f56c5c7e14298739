"""(being written) experiment tools."""

from __future__ import annotations
