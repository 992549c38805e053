"""The web page served by the API server (`orchestrator serve`): static files, no build step."""
