"""The bodies of ``cli.py``'s commands, one module per family; ``cli.py`` wires them up."""
