"""Converters: Hugging Face safetensors -> GGUF, and quantization through llama.cpp."""
