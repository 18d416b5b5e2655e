"""Command-line entry points (Hydra apps): train, eval, datagen, demo."""
