"""`rereel serve`: the local web app (archive browser, remake editor, webcam mirror, learning to see live).

The split follows Datasette's: the CLI only parses options (cli/serve.py), this package holds the
HTTP layer, and everything it shows comes from the library, remake and explore modules below it.
"""
