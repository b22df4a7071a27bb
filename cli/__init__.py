"""Operator commands run from a terminal (`python app.py COMMAND`): what they read, print and exit with."""
