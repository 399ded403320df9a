"""Layer 7: the `fusec` command line. `main.py` holds the entry point; each command group has a module."""
