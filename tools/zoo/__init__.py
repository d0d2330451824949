"""Builders of the bundled model zoo (models/*.yaml), one module per family; ``tools/gen_zoo.py`` runs them."""
