"""initlab: initialization and µP recommendations for neural network architectures.

``initlab.core`` holds the mathematics (pure Python and numpy, no web framework);
``initlab.web`` is the Flask service that exposes it over HTTP.
"""

__version__ = "0.1.0"
