"""The HTTP service: a thin Flask layer over :mod:`initlab.core`.

:func:`initlab.web.app.create_app` builds the application;
:mod:`initlab.web.wsgi` is what gunicorn serves. Routes parse with marshmallow,
call the core and dump with marshmallow; every error is an RFC 9457 problem
(:mod:`initlab.web.problems`); :mod:`initlab.web.openapi` writes the contract,
``openapi.yaml``.
"""
