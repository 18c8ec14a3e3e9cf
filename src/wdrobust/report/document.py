"""The typed results model, as the report writers and users read it: the dataclasses of
``pipeline.document`` (defined there, one layer down, because aggregation builds them)."""

from wdrobust.pipeline.document import (
    SCHEMA,
    AccuracyBand,
    AttackCost,
    BestUpper,
    CertificateCost,
    Cost,
    DataRecord,
    LossBounds,
    LowerEntry,
    Methods,
    ModelRecord,
    Normalization,
    Results,
    RunFacts,
    ThreatResult,
    UpperEntry,
    p_json,
)

__all__ = [
    "SCHEMA",
    "AccuracyBand",
    "AttackCost",
    "BestUpper",
    "CertificateCost",
    "Cost",
    "DataRecord",
    "LossBounds",
    "LowerEntry",
    "Methods",
    "ModelRecord",
    "Normalization",
    "Results",
    "RunFacts",
    "ThreatResult",
    "UpperEntry",
    "p_json",
]
