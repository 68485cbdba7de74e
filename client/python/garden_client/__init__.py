"""garden_client: Garden's Python client.

    from garden_client import Garden
    g = Garden("127.0.0.1:50051")                       # token_file=, tls_ca=, ...
    g.models()                                           # a DataFrame (pandas) or Records
    h = g.hist("70m", "deduped", steps="all", bins=64)   # h.steps, h.edges, h.counts, h.moments
    m = g.msd("70m", "deduped", mode="reference")        # columns step, msd, rate; m.attrs["peak"]
    for token in g.generate("70m", "deduped", 143000, "The garden"):
        print(token.text, end="")
    import garden_client.plot; garden_client.plot.density(h)   # Figure 2 (matplotlib)

See Garden's docstring for the connection settings and the conventions (suite, variant,
steps), and each method's for what it returns.
"""

from .client import (DEFAULT_ADDRESS, LAYER_METRICS, SERVICE_CONFIG, Garden, Generation,
                     Stream, step_selection)
from .errors import GardenError
from .results import (Attention, Histograms, Logits, Records, Table, Token, Tokens,
                      Unmasking)

__version__ = "0.1.0"

__all__ = ["Garden", "GardenError", "Generation", "Stream", "Histograms", "Logits",
           "Attention", "Tokens", "Token", "Unmasking", "Table", "Records",
           "step_selection", "DEFAULT_ADDRESS", "LAYER_METRICS", "SERVICE_CONFIG",
           "__version__"]
