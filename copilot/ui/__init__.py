"""The Gradio app (Live, Review, Train): a thin UI over the library.

May import anything but ``commands``; nothing imports it.
"""
