"""Marshmallow schemas of the HTTP API, one module per concept.

``spec``: the architecture spec (layers, groups, dims), loaded into the
dataclasses of :mod:`initlab.core.spec`; ``problem``: the problem details of
every error response.
"""
