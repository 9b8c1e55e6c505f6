"""The Sources face's domain: a source is a core connection with ``face = 'source'``.

Sources are created, changed, tested and deleted through the core connections services, so
a source also appears (camelCase, secrets hidden) in the Connections API. This package adds
only what the face needs on top: the snake_case config mapping with masked secrets
(``mapping``), the face's own listing (``repository``) and the use cases (``service``).
"""
