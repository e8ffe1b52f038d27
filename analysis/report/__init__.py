"""The study report: build (the order of work), stages (each section's computation), sections (their
text and tables), render (Markdown and HTML), card (the model card), wandb (one W&B run), cli."""
