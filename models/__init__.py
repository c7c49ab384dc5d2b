"""Models: Hub catalog and search, downloads, the local library, GGUF metadata."""
