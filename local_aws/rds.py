def install(settings):  # placeholder until the backend lands (same commit series)
    return None
