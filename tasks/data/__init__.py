"""Data shared by tasks: the built-in "digit scenes" and writers for real dataset layouts."""
