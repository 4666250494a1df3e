"""Next-reply suggestions: the handbook script at once, a local LLM's adaptation after, always guarded."""
