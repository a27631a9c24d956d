"""Write docs/spec-format.md from the attrs metadata of the spec classes.

The reference is generated so that it cannot drift from the code: every key, unit kind,
default, bound and cross-field rule comes from `schema.field` / `schema.rule`, and the example
error messages are produced by running the real loader. Run after changing a spec class or
adding a model family:

    python docs/gen_spec_docs.py          # rewrite docs/spec-format.md
    python docs/gen_spec_docs.py --check  # exit 1 if the committed file is stale
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from accelsim import hardware, plan, schema, spec, units, workload  # noqa: E402
from accelsim.errors import SpecError  # noqa: E402
from accelsim.models import FAMILIES  # noqa: E402

OUTPUT = ROOT / "docs" / "spec-format.md"

_UNITS = [
    ("bytes", "`6 MiB`, `32 GB`, `128 B`, `4096`", "bytes",
     "B with k M G T P E (powers of 1000) or Ki Mi Gi Ti Pi (powers of 1024); `KB` is rejected"),
    ("bandwidth", "`900 GB/s`, `1.5 TiB/s`, `25 GBps`", "bytes per second", "as for bytes, per s"),
    ("frequency", "`1.53 GHz`, `800 MHz`", "hertz", "Hz with k M G T"),
    ("time", "`5 us`, `126 ns`, `2 ms`", "seconds", "s, ms, us (or µs), ns, ps, min, h, d"),
    ("flop_rate", "`15.67 TFLOP/s`, `125 TFLOPS`", "FLOP per second",
     "FLOP/s, FLOPS, OP/s or OPS with k M G T P E"),
    ("count", "`97.4e9`, `18.9 G`", "a plain number", "an optional k M G T P E"),
]

_TRAPS = """\
The loader composes YAML into nodes and converts each by the field it fills, instead of trusting
PyYAML's implicit types (YAML 1.1 resolvers):

- **`1e9` is a number.** PyYAML reads `1e9` and `3.35e12` (no dot in the mantissa) as strings.
  Where a number is expected, any plain scalar that Python reads as a number is one.
- **`no`, `off`, `yes`, `on` are not booleans.** PyYAML turns them into `false`/`true`, so a
  model named `no` or a country code `NO` changes type. A string field keeps them as written;
  a boolean field takes only `true` or `false` and says so.
- **Duplicate keys are errors.** PyYAML keeps the last of two equal keys silently; accelsim reports
  the second and the line of the first.
- **Integers stay exact.** `capacity: 1152921504606846977` is not rounded through a float.
- **Merge keys and anchors work as the YAML merge-key spec says:** keys written in a mapping
  override merged ones wherever they appear, earlier mappings in `<<: [*a, *b]` win over later
  ones, and a problem inside an anchored mapping is reported once per place that merges it, at
  the anchor's line. A mapping that merges itself, or aliases that expand beyond
  {max_nodes} nodes, are errors rather than hangs.
- **Quoted numbers are strings.** `units: "80"` is rejected where an integer is expected; a
  quantity field parses its text either way (`capacity: "6 MiB"` is fine).
- **Tabs, bad indentation, undefined aliases and several documents** in one file are reported
  at their line and column with the likely cause.
"""


def _type_word(tp: Any, meta: dict) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return _type_word(inner, meta) + " or null"
    if meta.get("unit"):
        return meta["unit"]
    if meta.get("choices"):
        return "one of " + ", ".join(f"`{c}`" for c in meta["choices"])
    if attrs.has(tp):
        return f"mapping ({_anchor(tp)})"
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if attrs.has(item):
            return f"list of mappings ({_anchor(item)})"
        return f"list, each {_type_word(item, {})}"
    if origin is dict:
        value = typing.get_args(tp)[1]
        keys = meta.get("keys")
        which = ("keys " + ", ".join(f"`{k}`" for k in keys)) if keys else "any keys"
        each = f"a mapping ({_anchor(value)})" if attrs.has(value) else _type_word(value, {})
        return f"mapping, {which}, each {each}"
    if tp is Any:
        return "mapping with `family` (see [Model families](#model-families))"
    words = {int: "integer", float: "number", str: "string", bool: "`true` or `false`"}
    return words.get(tp, getattr(tp, "__name__", str(tp)))


def _anchor(cls: type) -> str:
    return f"[{cls.__name__}](#{cls.__name__.lower()})"


def _default(f: attrs.Attribute) -> str:
    if f.default is attrs.NOTHING:
        return "**required**"
    if isinstance(f.default, attrs.Factory):  # type: ignore[arg-type]
        return "all defaults"
    value = f.default
    if value is None:
        return "null"
    if f.metadata.get("unit"):
        return f"`{units.format_quantity(value, f.metadata['unit'])}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return '`""`'
    return f"`{value}`"


def _meaning(f: attrs.Attribute) -> str:
    meta = f.metadata
    text = meta.get("doc", "")
    bounds = []
    if meta.get("minimum") is not None:
        bounds.append(f">= {meta['minimum']:g}")
    if meta.get("positive"):
        bounds.append("> 0")
    if meta.get("maximum") is not None:
        bounds.append(f"<= {meta['maximum']:g}")
    if bounds:
        text += f" ({', '.join(bounds)})"
    return text.replace("|", "\\|")


def _class_section(cls: type, where: str, title: str | None = None) -> list[str]:
    hints = typing.get_type_hints(cls)
    doc = " ".join((cls.__doc__ or "").split())
    out = [f"### {title or cls.__name__}", "", f"{where.rstrip('.')}. {doc}", "",
           "| key | type / unit | default | meaning |", "|---|---|---|---|"]
    for f in attrs.fields(cls):
        meta = dict(f.metadata)
        key = spec.yaml_key(f.name)
        shown = f"`{key}`" if key == f.name else f"`{key}` (or `{f.name}`)"
        out.append(f"| {shown} | {_type_word(hints[f.name], meta)} | {_default(f)} | "
                   f"{_meaning(f)} |")
    rules = schema.rules(cls)
    if rules:
        out += ["", "Rules across keys:", ""]
        for fn, names in rules:
            keys = ", ".join(f"`{spec.yaml_key(n)}`" for n in names)
            out.append(f"- {keys}: {' '.join((fn.__doc__ or '').split())}")
    return out + [""]


_EXAMPLE_HW = """\
name: tiny
compute:
  units: 4.5
  clock: 1 GHz
  matrix: {fp32: {peak_flop_rate: 1 TFLOP/s}}
  vector_flop_rate: 1 TFLOP/s
  local_memory: 64 KB
caches:
  - {name: L1, capacity: 64 KiB, line: 64 B, ways: 7, bandwidth: 1 TB/s, write_allocate: no}
memory: {capacity: 16 GiB, bandwidth: 900 GHz}
interconect: {link_bandwidth: 50 GB/s}
"""


def _example_errors() -> list[str]:
    try:
        spec.hardware_from_yaml(_EXAMPLE_HW, "chip.yaml")
    except SpecError as exc:
        return [str(i) for i in exc.issues]
    raise AssertionError("the example spec should not load")


def render() -> str:
    """The whole reference as Markdown."""
    out = [
        "# Spec file format",
        "",
        "<!-- Generated by docs/gen_spec_docs.py from the attrs metadata; do not edit by hand. -->",
        "",
        "accelsim reads two kinds of YAML file: a **hardware spec** (one chip: compute, cache "
        "levels, memory, interconnect, calibration) and a **workload** (one training step: model "
        "family and hyperparameters, subbatch, precision, optimizer). `accelsim check FILE...` "
        "validates either kind, telling them apart by their top-level keys.",
        "",
        "A key is the field name without its unit suffix (`capacity` fills `capacity_bytes`, "
        "`clock` fills `clock_hz`, `latency` fills `latency_s`); the full field name is accepted "
        "too, but not both at once. Unknown keys are errors, with the nearest valid key "
        "suggested.",
        "",
        "## Quantities",
        "",
        "A quantity is a number and a unit in one string. A bare number is taken in the base "
        "unit. Quantities must be finite and non-negative.",
        "",
        "| unit kind | examples | bare number means | units |",
        "|---|---|---|---|",
    ]
    out += [f"| {k} | {ex} | {base} | {u} |" for k, ex, base, u in _UNITS]
    out += ["", "## Hardware spec", "",
            "Top level of a hardware file. A stock example: `hwspecs/v100.yaml`.", ""]
    out += _class_section(hardware.HardwareSpec, "The top level")
    out += _class_section(hardware.ComputeSpec, "Under `compute`")
    out += _class_section(hardware.MatrixPipe, "Under `compute.matrix.<dtype>`")
    out += _class_section(hardware.CacheLevelSpec, "Each item of `caches`, nearest level first")
    out += _class_section(hardware.MemorySpec, "Under `memory`")
    out += _class_section(hardware.InterconnectSpec, "Under `interconnect`")
    out += _class_section(hardware.Calibration, "Under `calibration` (optional)")
    out += _class_section(hardware.KernelLibrary, "Under `kernel_library` (optional)")
    out += _class_section(hardware.KernelMenu, "Under `kernel_library.default` and each "
                          "`kernel_library.menus.<dtype>` or `menus.<dtype>_<layout>` (layout NN, "
                          "NT, TN or TT: op(A) and op(B) as stored or transposed); a key left "
                          "out takes the value shown here")
    out += _class_section(hardware.TechnologySpec,  # issue 14: energy, area and cost
                          "Under `technology` (optional; unset values come from the node's row "
                          "of `accelsim/data/technology_nodes.yaml`, see docs/energy.md; "
                          "nodes: " + ", ".join(spec.technology_table().nodes) + ")")
    out += ["## Workload", "", "Top level of a workload file. A stock example: "
            "`workloads/nmt_frontier.yaml`.", ""]
    out += _class_section(workload.WorkloadSpec, "The top level")
    out += _class_section(workload.DatasetSpec, "Under `dataset` (optional)")
    out += _class_section(plan.ParallelPlan, "Under `parallel` (optional), in a plan file "
                          "(`--plan FILE.yaml`), or on the command line as "
                          "`--plan dp=512,pp=4,tp=1,shard_embedding=true` (dp, pp, tp: data, "
                          "pipeline, tensor; `stages=1/2/1`)")
    out += ["## Model families", "",
            "`model` is a mapping whose `family` key picks one of the families below; its other "
            "keys are that family's hyperparameters.", ""]
    for name in sorted(FAMILIES):
        fam = FAMILIES[name]
        summary = fam.doc.splitlines()[0] if fam.doc else ""
        out += _class_section(fam.config_class, f"`family: {name}`: {summary}",
                              f"{name} ({fam.config_class.__name__})")
    out += [
        "## Error messages",
        "",
        "Loading never stops at the first problem: every issue in a file is collected and all are "
        "reported together, in file order, one per line:",
        "",
        "```",
        "FILE:LINE:COLUMN: KEY.PATH: expected WHAT, got WHAT",
        "```",
        "",
        "`LINE:COLUMN` (1-based) point at the offending value, or at the key for unknown and "
        "duplicate keys, or at the start of the enclosing mapping for a missing key; they are "
        "left out only when there is no node (an empty file). `KEY.PATH` is the dotted path from "
        "the top (`caches[0].ways`, `compute.matrix.fp32`), `<document>` for the file as a "
        "whole. Rules that involve several keys (such as `ways` dividing the number of lines) "
        "are checked on every key that loaded, so they are reported alongside other problems "
        "in the same mapping. A YAML syntax error stops the parser, so it is the one problem "
        "reported for its file. `accelsim check` exits with code 2 when any file has a "
        "problem, and prints no traceback.",
        "",
        "For example, this file:",
        "",
        "```yaml",
        _EXAMPLE_HW.rstrip(),
        "```",
        "",
        "is reported as:",
        "",
        "```",
        *_example_errors(),
        "```",
        "",
        "The test corpus `tests/data/bad/` holds one broken file per kind of mistake, with the "
        "exact lines expected for each in `tests/data/bad/expected.yaml`.",
        "",
        "## Limits",
        "",
        "Every number is bounded where it is read, so that nothing a file says can make the "
        "simulator divide by zero, overflow a 64-bit integer or print an infinite time:",
        "",
        "- Rates the simulator divides by (bandwidths, FLOP rates, the clock, calibration "
        "efficiencies) must be `> 0`.",
        "- Each field has a physical ceiling, shown as `<= ...` in the tables above: far beyond "
        "any chip or model (1 THz clocks, 1e21 FLOP/s or B/s, latencies of 1 s, 1 PiB cache "
        "levels, 1 EiB memories, hidden sizes of 2**20, vocabularies of 2**24, subbatches of "
        "2**24 examples), and low enough that products of fields stay below 2**63.",
        "- Rules across keys: a `private` cache level may not sit below a `shared` one; `plru` "
        "needs a power-of-two associativity; level names `HBM`, `memory`, `compute` and `links` "
        "(any case) are reserved for the report's other columns; at least one cache level.",
        "- Rates of the newer sections are bounded alike: a pipe's `efficiency`, the "
        "`sustained_clock`, the `network_bandwidth`, `network_latency`, `host_bandwidth` and "
        "`host_memory` of the interconnect, plan degrees (2**20), `microbatches` (2**24) and "
        "layers per stage (2**14); technology energies (1e6 pJ), areas (1e6 um^2 or mm^2), "
        "prices (1e12 USD) and counts have ceilings too, per-dtype tables included.",
        "- Rules that need the chip count or both files (the torus shape holding `--chips`, "
        "`chips_per_node` dividing it, a fully connected system's links, a plan that offloads "
        "needing `host_bandwidth`, a plan's stages against the model's layers) are checked "
        "before simulating, and `accelsim check --chips N HW WL` reports them located in the "
        "file to blame, as `run` does.",
        f"- A spec file is at most {spec.MAX_FILE_BYTES // 1024} KiB, nests at most "
        f"{spec.MAX_DEPTH} levels deep, is a regular file (not a FIFO or a device) and holds no "
        "control characters.",
        "- Before simulating, `accelsim.estimate` bounds the work of a hardware and workload "
        "pair (graph ops, tensor bytes, cache accesses and line state per mode) and refuses a "
        "pair beyond its limits with the estimate and the option that raises the limit "
        "(`--max-graph-ops`, `--allow-large`); `accelsim check HW WL` runs the same estimate "
        "for the mode given by `--mode` (default `auto`); see `accelsim/estimate.py`.",
        "",
        "## PyYAML traps handled",
        "",
        _TRAPS.format(max_nodes=f"{spec.MAX_NODES:,}").rstrip(),
        "",
        "## Writing specs from code",
        "",
        "`accelsim.spec.dump_yaml(obj)` writes a spec object as YAML with readable quantities "
        "(`6 MiB`, `900 GB/s`, `126 ns`), each the shortest text that parses back to exactly the "
        "same number, so `hardware_from_yaml(dump_yaml(hw)) == hw`; `with_units=False` writes "
        "base-unit numbers instead. `accelsim.spec_strategies` (needs the `test` extra) has "
        "hypothesis strategies `hardware_specs()`, `cache_level_specs()` and `workload_specs()` "
        "that generate valid specs from the same metadata.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    """Rewrite the reference, or with --check report whether it is stale."""
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is stale: run python docs/gen_spec_docs.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
