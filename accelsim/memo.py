"""A small identity memo for values derived from frozen objects (models, lowerings, precision plans)."""


def remember(memo: dict, obj, extra, make, keep: int = 8):
    """``make()``, remembered in ``memo`` for the object ``obj`` (by identity: frozen configs and models) and
    ``extra``; the object is kept alive while remembered, the oldest of more than ``keep`` entries dropped."""
    key = (id(obj), extra)
    hit = memo.get(key)
    if hit is not None and hit[0] is obj:
        return hit[1]
    if len(memo) >= keep:
        try:                                    # tolerating another thread doing the same
            memo.pop(next(iter(memo)), None)
        except (StopIteration, RuntimeError):
            pass
    value = make()
    memo[key] = (obj, value)
    return value
