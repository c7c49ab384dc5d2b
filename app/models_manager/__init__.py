"""The model manager: catalog, Hub search, downloads, library, conversion."""
