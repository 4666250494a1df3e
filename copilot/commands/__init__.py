"""The ``copilot`` CLI (``cli.main``) and its sub-commands, one module each: thin shells over the library.

May import anything; nothing imports it.
"""
