"""Complete verification by branch and bound on top of the bound engine (docs/certificates.md, section
"bab"; certified radii: docs/notation.md#certified-radius-and-flip-distance): ``search.solve`` decides a
property (``property.BabProperty``: groups of linear output rows over a box cap ball), ``search.verify``
its margin case over B(x0, r) cap [0,1]^d; the ``bab`` certificate (``certificate``) turns the latter into
certified radii by bisection."""

from wdrobust.certify.bab.property import BabProperty
from wdrobust.certify.bab.search import BabOptions, BabResult, solve, verify

__all__ = ["BabOptions", "BabProperty", "BabResult", "solve", "verify"]
