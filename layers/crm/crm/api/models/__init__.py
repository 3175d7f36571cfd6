"""The HTTP API's request and response models, one module per resource (apart from domain and items)."""
