"""Quality assurance of finished calls: review, store, report.

Owns: reading or transcribing a call file (``calls``), the one review of a finished call (``review``),
batches and their Ray engine (``batch``, ``distributed``), call metadata (``metadata``), the post-call
summary (``summary``), the review database (``store``) and the HTML/CSV/JSON reports (``report``).
May import the stage packages (``transcription``, ``judgement``, ``suggest``) and the base modules.
"""
