"""Developer workflows on a user's own code: ``analyze``, ``complete``, ``fix`` and ``debug``.

Each workflow is a module with a Python API (import it from its module, e.g.
``codeloop.workflows.analyze``); the CLI verbs in :mod:`codeloop.cli` are thin faces over them.
None of them changes a user's file unless asked to.
"""
