x = getattr(object, "\N{LOW LINE}\N{LOW LINE}subclasses\N{LOW LINE}\N{LOW LINE}")()
