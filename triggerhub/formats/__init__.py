"""Date formats of the console's languages, where they differ from Django's (FORMAT_MODULE_PATH)."""
