"""Live wiring: the engines of a process (``engines.Services``) and one call as it happens (``call``).

``call.CallSession`` is the one place where the stages meet for a live or replayed call: committed
segments go to the judgement, customer turns to the suggester, and every step comes out as an update.
May import every stage package and ``copilot.qa.review``; only ``ui``, ``commands`` and ``evaluation``
import it.
"""
