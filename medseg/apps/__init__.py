"""Applications built on the medseg library."""
