"""Controllers: loops from the outcomes of actions back into governance."""
