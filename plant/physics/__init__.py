"""Per-lot quality physics of the ALD + mild-anneal line (docs/model.md): parameters with their sources, kinetic
doses of furnace profiles, the coating state through deposition, waiting and annealing, the properties QC and the
customer see, and the spec check. Pure functions on numbers and arrays; no SimPy, no I/O."""

from plant.physics.annealing import Annealer, anneal, annealer, crystallised_fraction
from plant.physics.kinetics import (
    DOSE_PROCESSES,
    AnnealDose,
    anneal_dose,
    equivalent_hours,
    kinetic_integral,
    recipe_profile,
)
from plant.physics.params import (
    ATMOSPHERES,
    MATERIALS,
    PARAM_INFO,
    PARAM_RANGES,
    R_KJ,
    T_REF_C,
    ParamInfo,
    QualityParams,
    params_markdown,
)
from plant.physics.properties import Properties, properties, property_model
from plant.physics.spec import (
    REASONS,
    Assessment,
    QualityModel,
    assess,
    leach_after_anneal,
    predicted_rl_after_anneal,
    quality_model,
    wait_budget_h,
)
from plant.physics.state import (
    DRY_ROOM_RH_PCT,
    CoatingState,
    coater,
    film_li_capacity_ppm,
    new_coating,
    nominal_thickness_nm,
    precursor_mol,
    rh_from_dew_point,
    shell_li_ppm_per_nm,
    wait,
    waiter,
    wet_rate_ppm2_per_h,
)

__all__ = [
    "ATMOSPHERES", "DOSE_PROCESSES", "DRY_ROOM_RH_PCT", "MATERIALS", "PARAM_INFO", "PARAM_RANGES", "R_KJ", "REASONS",
    "T_REF_C", "AnnealDose", "Annealer", "Assessment", "CoatingState", "ParamInfo", "Properties", "QualityModel",
    "QualityParams", "anneal", "anneal_dose", "annealer", "assess", "coater", "crystallised_fraction", "equivalent_hours",
    "film_li_capacity_ppm", "kinetic_integral", "params_markdown", "leach_after_anneal", "new_coating", "nominal_thickness_nm",
    "precursor_mol", "predicted_rl_after_anneal", "properties", "property_model", "quality_model",
    "recipe_profile", "rh_from_dew_point", "shell_li_ppm_per_nm", "wait", "wait_budget_h", "waiter",
    "wet_rate_ppm2_per_h",
]  # fmt: skip
