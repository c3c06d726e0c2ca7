"""The pasar Product-Service: catalogue, search, stock adjustments and stock reservations."""
