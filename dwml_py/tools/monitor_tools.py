"""(being written) monitor tools."""

from __future__ import annotations
