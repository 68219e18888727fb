"""optimise package."""
