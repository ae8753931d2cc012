"""The Gradio app: one module per tab, wired to tasks; no model is loaded here."""
