"""vpbench plugin (being written)."""
