"""Faces on the core: the HTTP API and web page (``codeloop serve``), the MCP server
(``codeloop mcp``) and the IPython/Jupyter magics (``%load_ext codeloop``).

They hold no logic of their own: they call the sandbox, the agent and the history. The
``server`` extra installs what they need (``pip install 'codeloop[server]'``); nothing here is
imported by ``import codeloop``.
"""

from __future__ import annotations

__all__: list[str] = []
