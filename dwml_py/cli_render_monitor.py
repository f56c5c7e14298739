"""Terminal renderers of the monitor tools; registered into cli_render.RENDERERS."""

from __future__ import annotations

from dwml_py.cli_render import RENDERERS  # noqa: F401
