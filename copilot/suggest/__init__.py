"""Stage 4, next-reply suggestions: the handbook script at once, a local LLM's adaptation after, always guarded.

Owns: the suggester (``engine``), prompts, template slots, the guard, the shared LLM gate and the LLM
itself (``llm``). May import: ``knowledge`` (retrieval), ``judgement`` (the guard checks the rules),
the base modules and ``copilot.models``.
"""
