"""Test helpers shipped with the package: a fake OpenAI-compatible upstream (the outside world)."""
