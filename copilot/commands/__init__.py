"""Sub-commands of the ``copilot`` CLI, one module each."""
