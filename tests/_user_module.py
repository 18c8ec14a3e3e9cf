"""A user's own model file, as a newcomer writes one: the source of ``tiny_net.py`` with class ``TinyNet``
(a one-hidden-layer MLP on 8x8 inputs whose width is the constructor option ``hidden``)."""

import textwrap

SOURCE = textwrap.dedent(
    """
    from torch import nn


    class TinyNet(nn.Module):
        def __init__(self, hidden, num_classes=10):
            super().__init__()
            self.body = nn.Sequential(
                nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
            )

        def forward(self, x):
            return self.body(x)
    """
)
