"""A layer module the stub functions import, to prove the layer is on their path."""

LAYER_NAME = "shared_layer"
