"""Sphinx configuration: MyST Markdown pages and an API reference from the installed package's docstrings.
Build (offline): python -m sphinx -W --keep-going -b html docs docs/_build/html"""

from __future__ import annotations

import rankseg

project = "rankseg"
release = version = rankseg.__version__
copyright = "2026, the rankseg developers"

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

autodoc_typehints = "description"  # types of every parameter shown with its description
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "alabaster"
html_static_path: list[str] = []
html_theme_options = {"description": "Masks that maximise expected Dice or IoU", "fixed_sidebar": True}
