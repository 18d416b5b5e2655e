"""Lightning modules, data modules and training utilities."""
