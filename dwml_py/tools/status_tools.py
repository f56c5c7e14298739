"""(being written) status tools."""

from __future__ import annotations
