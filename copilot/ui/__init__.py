"""The Gradio user interface over the library."""
