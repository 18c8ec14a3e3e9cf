"""Complete verification by branch and bound on top of the bound engine (docs/certificates.md, section
"bab"; certified radii: docs/notation.md#certified-radius-and-flip-distance): ``search.verify`` decides one
margin property over B(x0, r) cap [0,1]^d; the ``bab`` certificate (``certificate``) turns it into
certified radii by bisection."""

from wdrobust.certify.bab.search import BabOptions, BabResult, verify

__all__ = ["BabOptions", "BabResult", "verify"]
