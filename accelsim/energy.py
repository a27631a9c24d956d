"""Energy, die area and cost of a design, from a simulated step and the spec's technology.

This room comes after `report` in the flow: it reads the counters a `Report` already holds
(FLOPs per op, bytes through each cache level and HBM, step time) and the hardware spec's
`technology` section (its node's defaults from accelsim/data/technology_nodes.yaml, overridden
per value), and returns plain numbers (`report.EnergyAreaCost`). It runs no simulation. The
model, its sources and its limits: docs/energy.md.
"""

from __future__ import annotations

import math

import attrs

from accelsim.errors import AccelsimError
from accelsim.hardware import CacheLevelSpec, HardwareSpec, TechnologySpec
from accelsim.report import EnergyAreaCost, Report
from accelsim.spec import node_defaults
from accelsim.vocabulary import MEMORY, PRIVATE, dtype_bytes

MIB = 2**20
PJ = 1e-12
SECONDS_PER_YEAR = 365.25 * 86400
#: Physical address bits a tag covers (a 48-bit address space, as today's GPUs and CPUs use).
ADDRESS_BITS = 48
#: Valid and dirty bits stored with each tag.
STATE_BITS = 2
#: A fully associative level (ways: 0) is charged as a 16-way tag lookup (a CAM search).
FULLY_ASSOCIATIVE_TAG_WAYS = 16
#: Dtypes whose matrix pipe is separate hardware; the others share one reduced-precision
#: array (a tensor core computes fp16, bf16, tf32, fp8 and int8), sized by its largest dtype.
SEPARATE_PIPES = ("fp32", "fp64")


def technology(hw: HardwareSpec) -> TechnologySpec:
    """The spec's technology with every unset value taken from its node's row."""
    if hw.technology is None:
        raise AccelsimError(f"{hw.name}: no technology section; energy, area and cost need one "
                            "(technology: {node: 12nm}, see docs/energy.md)")
    return hw.technology.resolved(node_defaults(hw.technology.node))


def _required(tech: TechnologySpec, name: str) -> float:
    value = getattr(tech, name)
    if value is None:
        raise AccelsimError(f"technology.{name}: expected a value (node {tech.node} has none)")
    return float(value)


# --- per-access energies --------------------------------------------------------------------
def tag_bits(level: CacheLevelSpec) -> int:
    """Bits of one tag: address bits above the set index and line offset, plus state bits."""
    ways = level.ways or level.lines
    sets = max(1, level.lines // ways)
    return ADDRESS_BITS - int(math.log2(sets)) - int(math.log2(level.line_bytes)) + STATE_BITS


def level_energy_per_byte_j(level: CacheLevelSpec, tech: TechnologySpec) -> float:
    """Energy per byte served by one cache level: one bank's access plus the wires to it.

    A level no larger than `sram_bank_bytes` is one array: `sram_energy_pj_per_byte_at_1mib x
    (capacity / 1 MiB) ** exponent` (the CACTI-like law, its own wires included). A larger
    level is built of banks: an access reads ONE bank (the law at the bank's capacity) and
    crosses the on-chip network to it, `wire_energy_pj_per_bit_per_mm x 8 bits x (sqrt(level
    area) - sqrt(bank area)) / 2`: the mean X-Y distance from the centre of the square the
    level occupies, less the bank's own, which the law already charges (so the two pieces meet
    at one bank). Each access also reads the tags of all ways of its set, amortized over the
    line, in its bank (docs/energy.md).
    """
    e_1mib = _required(tech, "sram_energy_pj_per_byte_at_1mib")
    exponent = _required(tech, "sram_energy_capacity_exponent")
    bank_bytes = min(float(level.capacity_bytes), _required(tech, "sram_bank_bytes"))
    ways_read = level.ways or FULLY_ASSOCIATIVE_TAG_WAYS
    tag_fraction = ways_read * tag_bits(level) / (8 * level.line_bytes)
    bank_pj = e_1mib * (bank_bytes / MIB) ** exponent * (1.0 + tag_fraction)
    return (bank_pj + level_wire_energy_per_byte_pj(level, tech)) * PJ


def level_wire_energy_per_byte_pj(level: CacheLevelSpec, tech: TechnologySpec) -> float:
    """On-chip network energy (pJ) per byte from a level's centre to one of its banks (0 if one bank)."""
    bank_bytes = _required(tech, "sram_bank_bytes")
    if level.capacity_bytes <= bank_bytes:
        return 0.0
    level_mm2 = _level_area_mm2(level, 1, sram_area_mm2_per_mib(tech))
    bank_mm2 = level_mm2 * bank_bytes / level.capacity_bytes
    distance_mm = (math.sqrt(level_mm2) - math.sqrt(bank_mm2)) / 2.0
    return _required(tech, "wire_energy_pj_per_bit_per_mm") * 8 * distance_mm


def matrix_energy_per_flop_j(tech: TechnologySpec, dtype: str) -> tuple[float, str]:
    """Energy per matrix FLOP in `dtype` (falls back to fp32, as `ComputeSpec.pipe` does)."""
    table = tech.matrix_energy_pj_per_flop or {}
    for d in (dtype, "fp32"):
        if d in table:
            return table[d] * PJ, d
    raise AccelsimError(f"technology.matrix_energy_pj_per_flop: expected a value for {dtype} "
                        f"or fp32, got {sorted(table)}")


# --- area -----------------------------------------------------------------------------------
def sram_area_mm2_per_mib(tech: TechnologySpec) -> float:
    """Macro area of one MiB of SRAM: bit cells / array efficiency."""
    cell_um2 = _required(tech, "sram_bitcell_area_um2")
    return cell_um2 * 8 * MIB / 1e6 / _required(tech, "sram_array_efficiency")


def _macs_per_unit(hw: HardwareSpec, dtype: str) -> float:
    pipe = hw.compute.matrix[dtype]
    if pipe.macs_per_cycle_per_unit is not None:
        return float(pipe.macs_per_cycle_per_unit)
    assert pipe.peak_flop_rate is not None
    return pipe.peak_flop_rate / (2.0 * hw.compute.units * hw.compute.clock_hz)


def unit_mac_area_um2(hw: HardwareSpec, tech: TechnologySpec) -> float:
    """MAC datapath area of one compute unit: separate pipes summed, the shared array's largest."""
    areas = tech.mac_area_um2 or {}
    separate, shared = 0.0, 0.0
    for dtype in hw.compute.matrix:
        if dtype not in areas:
            continue
        a = _macs_per_unit(hw, dtype) * areas[dtype]
        if dtype in SEPARATE_PIPES:
            separate += a
        else:
            shared = max(shared, a)
    return separate + shared


def _die_units(hw: HardwareSpec, tech: TechnologySpec) -> int:
    return tech.die_units if tech.die_units is not None else hw.compute.units


def _hbm_stacks(hw: HardwareSpec, tech: TechnologySpec) -> int:
    assert tech.hbm_stacks is not None  # HardwareSpec's rule
    return tech.hbm_stacks


def _level_area_mm2(level: CacheLevelSpec, copies: int, per_mib: float) -> float:
    """Data plus tag arrays of a level (one tag per line)."""
    with_tags = 1.0 + tag_bits(level) / (8 * level.line_bytes)
    return level.capacity_bytes * copies / MIB * per_mib * with_tags


def area_mm2(hw: HardwareSpec, tech: TechnologySpec) -> dict[str, float]:
    """Die area by component (mm^2)."""
    units = _die_units(hw, tech)
    per_mib = sram_area_mm2_per_mib(tech)
    unit_mm2 = (_required(tech, "unit_base_area_mm2")
                + _required(tech, "mac_area_factor") * unit_mac_area_um2(hw, tech) / 1e6)
    out = {"compute logic": units * unit_mm2,
           "unit SRAM": units * (hw.compute.local_memory_bytes + hw.compute.register_file_bytes)
           / MIB * per_mib}
    for level in hw.caches:
        copies = units if level.sharing == PRIVATE else 1
        out[level.name] = _level_area_mm2(level, copies, per_mib)
    out["HBM PHY"] = _hbm_stacks(hw, tech) * _required(tech, "hbm_phy_area_mm2")
    out["link PHY"] = hw.interconnect.links * _required(tech, "link_phy_area_mm2")
    return out


def sram_mib(hw: HardwareSpec, tech: TechnologySpec) -> float:
    """All SRAM on the die: unit-local storage and every cache level's instances."""
    units = _die_units(hw, tech)
    total = units * (hw.compute.local_memory_bytes + hw.compute.register_file_bytes)
    for level in hw.caches:
        total += level.capacity_bytes * (units if level.sharing == PRIVATE else 1)
    return total / MIB


def static_power_w(hw: HardwareSpec, tech: TechnologySpec) -> dict[str, float]:
    """Leakage and background power by component (W)."""
    area = area_mm2(hw, tech)
    return {"logic": area["compute logic"] * _required(tech, "logic_leakage_w_per_mm2"),
            "SRAM": sram_mib(hw, tech) * _required(tech, "sram_leakage_mw_per_mib") / 1e3,
            MEMORY: _hbm_stacks(hw, tech) * _required(tech, "hbm_static_w_per_stack")}


# --- buildability and cost ------------------------------------------------------------------
def dies_per_wafer(die_mm2: float, wafer_diameter_mm: float) -> float:
    """Gross dies per wafer: pi (d/2)^2 / A - pi d / sqrt(2 A) (the standard edge-loss formula)."""
    return max(0.0, math.pi * (wafer_diameter_mm / 2) ** 2 / die_mm2
               - math.pi * wafer_diameter_mm / math.sqrt(2 * die_mm2))


def murphy_yield(die_mm2: float, defects_per_cm2: float) -> float:
    """Murphy's yield model: ((1 - exp(-A D)) / (A D))^2, A in cm^2."""
    ad = die_mm2 / 100.0 * defects_per_cm2
    return 1.0 if ad == 0 else ((1.0 - math.exp(-ad)) / ad) ** 2


@attrs.frozen(kw_only=True)
class Build:
    """How a die area is built and what its silicon costs."""

    verdict: str
    dies: int
    wafers: int
    die_mm2: float
    dies_per_wafer: float | None
    die_yield: float | None
    silicon_usd: float
    arithmetic: tuple[str, ...]


def build(die_area_mm2: float, tech: TechnologySpec) -> Build:
    """Single die within the reticle, several reticle-sized dies in a package, or wafer scale."""
    reticle = _required(tech, "reticle_limit_mm2")
    max_dies = int(_required(tech, "max_dies_per_package"))
    usable = _required(tech, "wafer_usable_area_mm2")
    diameter = _required(tech, "wafer_diameter_mm")
    wafer_usd = _required(tech, "wafer_cost_usd")
    d0 = _required(tech, "defect_density_per_cm2")
    ratio = die_area_mm2 / reticle
    n = max(1, math.ceil(ratio))
    if n > max_dies:
        wafers = math.ceil(die_area_mm2 / usable)
        return Build(
            verdict="wafer scale", dies=1, wafers=wafers, die_mm2=die_area_mm2,
            dies_per_wafer=None, die_yield=None, silicon_usd=wafers * wafer_usd,
            arithmetic=(
                f"{die_area_mm2:,.0f} mm^2 / {reticle:,.0f} mm^2 reticle = {ratio:,.1f} reticles"
                f" > {max_dies} dies per package: wafer scale",
                f"{die_area_mm2:,.0f} mm^2 / {usable:,.0f} mm^2 usable per wafer -> {wafers} "
                f"wafer{'s' * (wafers > 1)} x ${wafer_usd:,.0f} (defects assumed absorbed by "
                "redundant rows, yield 1)"))
    die = die_area_mm2 / n
    dpw = dies_per_wafer(die, diameter)
    y = murphy_yield(die, d0)
    good = dpw * y
    silicon = n * wafer_usd / good if good > 0 else math.inf
    verdict = "single die" if n == 1 else "multi-die"
    first = (f"{die_area_mm2:,.0f} mm^2 <= {reticle:,.0f} mm^2 reticle: one die" if n == 1 else
             f"{die_area_mm2:,.0f} mm^2 / {reticle:,.0f} mm^2 reticle = {ratio:.2f} -> {n} dies "
             f"of {die:,.0f} mm^2 in one package")
    return Build(
        verdict=verdict, dies=n, wafers=0, die_mm2=die, dies_per_wafer=dpw, die_yield=y,
        silicon_usd=silicon,
        arithmetic=(first,
                    f"dies per {diameter:.0f} mm wafer = pi (d/2)^2 / A - pi d / sqrt(2 A) = "
                    f"{dpw:.1f}; Murphy yield at {d0:g} defects/cm^2 = {100 * y:.1f} %",
                    f"{n} x ${wafer_usd:,.0f} / ({dpw:.1f} x {y:.3f}) = ${silicon:,.0f} of silicon"))


# --- the estimate ---------------------------------------------------------------------------
def op_dynamic_energy_j(report: Report, hw: HardwareSpec, tech: TechnologySpec,
                        precision: str) -> list[dict[str, float]]:
    """Each op's dynamic energy by component: its FLOPs and the bytes it moved per level."""
    e_matrix, _ = matrix_energy_per_flop_j(tech, precision)
    e_vector = _required(tech, "vector_energy_pj_per_flop") * PJ
    e_level = {c.name: level_energy_per_byte_j(c, tech) for c in hw.caches}
    e_hbm = _required(tech, "hbm_energy_pj_per_bit") * 8 * PJ
    out = []
    for op in report.ops:
        parts = {"matrix": op.flops * e_matrix if op.kind == "gemm" else 0.0,
                 "vector": 0.0 if op.kind == "gemm" else op.flops * e_vector}
        for name, e in e_level.items():
            parts[name] = op.bytes.get(name, 0.0) * e
        parts[MEMORY] = op.bytes.get(MEMORY, 0.0) * e_hbm
        out.append(parts)
    return out


def link_bytes(report: Report, precision: str) -> float:
    """Bytes one chip sends in the step's ring all-reduce of every gradient: 2 (N-1)/N x params."""
    n = report.summary.chips
    return 2.0 * (n - 1) / n * report.summary.params * dtype_bytes(precision) if n > 1 else 0.0


def estimate(report: Report, hw: HardwareSpec, precision: str) -> EnergyAreaCost:
    """Energy per step by component, power, energy per run, die area, buildability and cost."""
    tech = technology(hw)
    s = report.summary
    per_op = op_dynamic_energy_j(report, hw, tech, precision)
    energy: dict[str, float] = {}
    for parts in per_op:
        for k, v in parts.items():
            energy[k] = energy.get(k, 0.0) + v
    static = static_power_w(hw, tech)
    if math.isfinite(s.step_time_s):
        energy["links"] = (link_bytes(report, precision) * _required(tech, "link_energy_pj_per_bit")
                           * 8 * PJ)
        energy["static"] = sum(static.values()) * s.step_time_s
        total = sum(energy.values())
        power = total / s.step_time_s if s.step_time_s > 0 else 0.0
    else:  # a step that does not fit and was not timed: area and chip cost only
        total = power = math.nan

    area = area_mm2(hw, tech)
    die = sum(area.values())
    b = build(die, tech)
    memory_gb = hw.memory.capacity_bytes / 1e9
    chip_cost = {"silicon": b.silicon_usd,
                 "memory": memory_gb * _required(tech, "hbm_cost_usd_per_gb")}
    chip_usd = sum(chip_cost.values())

    epochs = _required(tech, "training_epochs")
    run_time = run_j = run_kwh = None
    run_cost: dict[str, float] | None = None
    if s.epoch_time_s is not None and s.steps_per_epoch is not None:
        run_time = s.epoch_time_s * epochs
        run_j = total * s.chips * s.steps_per_epoch * epochs
        run_kwh = run_j / 3.6e6
        amortized = chip_usd / (_required(tech, "amortization_years") * SECONDS_PER_YEAR)
        run_cost = {"chips": s.chips * run_time * amortized,
                    "energy": run_kwh * _required(tech, "energy_price_usd_per_kwh")}

    e_matrix, used = matrix_energy_per_flop_j(tech, precision)
    assumptions = {
        "node": tech.node,
        f"matrix {used}": f"{e_matrix / PJ:.3g} pJ/FLOP",
        "vector": f"{tech.vector_energy_pj_per_flop:.3g} pJ/FLOP",
        **{f"{c.name} access": _level_access_text(c, tech) for c in hw.caches},
        MEMORY: f"{tech.hbm_energy_pj_per_bit:g} pJ/bit",
        "links": f"{tech.link_energy_pj_per_bit:g} pJ/bit",
        "SRAM area": f"{sram_area_mm2_per_mib(tech):.3g} mm^2/MiB "
                f"({tech.sram_bitcell_area_um2:g} um^2 cells / {tech.sram_array_efficiency:g})",
        "compute units on die": str(_die_units(hw, tech)),
        "memory stacks": str(_hbm_stacks(hw, tech)),
        "wafer": f"${tech.wafer_cost_usd:,.0f}",
        "defects": f"{tech.defect_density_per_cm2:g}/cm^2",
        "memory price": f"${tech.hbm_cost_usd_per_gb:g}/GB",
        "amortization": f"{tech.amortization_years:g} years",
        "electricity": f"${tech.energy_price_usd_per_kwh:g}/kWh",
        "training run": f"{epochs:g} epoch{'s' * (epochs != 1)}",
    }
    if used != precision:
        assumptions[f"matrix {precision}"] = f"no {precision} energy at {tech.node}: fp32's used"
    return EnergyAreaCost(
        node=tech.node, step_energy_j=energy, total_step_energy_j=total, static_power_w=static,
        average_power_w=power, op_dynamic_energy_j=tuple(sum(p.values()) for p in per_op),
        run_time_s=run_time, run_energy_j=run_j, run_energy_kwh=run_kwh, area_mm2=area,
        die_area_mm2=die, buildability=b.verdict, dies=b.dies, wafers=b.wafers,
        area_arithmetic=b.arithmetic, dies_per_wafer=b.dies_per_wafer, die_yield=b.die_yield,
        chip_cost_usd=chip_cost, total_chip_cost_usd=chip_usd, run_cost_usd=run_cost,
        total_run_cost_usd=sum(run_cost.values()) if run_cost is not None else None,
        assumptions=assumptions)


def _level_access_text(level: CacheLevelSpec, tech: TechnologySpec) -> str:
    """E.g. '166 pJ/B (1 MiB bank + 161 pJ/B of wire)' for a banked level, '12.3 pJ/B' otherwise."""
    total = f"{level_energy_per_byte_j(level, tech) / PJ:.3g} pJ/B"
    wire = level_wire_energy_per_byte_pj(level, tech)
    if wire == 0.0:
        return total
    bank_mib = _required(tech, "sram_bank_bytes") / MIB
    return f"{total} ({bank_mib:g} MiB bank + {wire:.3g} pJ/B of wire)"


def with_estimate(report: Report, hw: HardwareSpec, precision: str) -> Report:
    """`report` with `summary.energy_area_cost` filled when `hw` has a technology section."""
    if hw.technology is None:
        return report
    summary = attrs.evolve(report.summary, energy_area_cost=estimate(report, hw, precision))
    return attrs.evolve(report, summary=summary)
