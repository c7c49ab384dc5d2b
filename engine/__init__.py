"""Inference: llama.cpp and remote backends, chat templates, the context window."""
