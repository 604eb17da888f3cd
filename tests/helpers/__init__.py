"""Helpers shared by several test modules (test modules never import each other).

``tests/`` is on ``sys.path`` while pytest runs (the rootdir conftest), so a test imports these as
``from helpers.studies import write_spec``.
"""
