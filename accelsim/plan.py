"""A parallel training plan: how the chips of a system split one training step.

`ParallelPlan` is a frozen spec object, loaded by `accelsim.spec` like every other (a
`parallel:` section of a workload file, a plan file, or `--plan dp=512,pp=4` on the command
line, all with the same located errors). Chips are numbered tensor-parallel innermost, then
pipeline stages, then data-parallel replicas, so a tensor-parallel group shares a node (or a
torus row) before anything else does. Nothing here knows hardware or graphs: `partition`
applies the plan to a graph, `collectives` prices its communication.
"""

from __future__ import annotations

from typing import Any

import attrs

from accelsim.errors import AccelsimError
from accelsim.schema import Violation, check_rules, field, rule

#: Pipeline schedules: `timestep` pipelines an RNN's timesteps across its layer stages (the
#: paper's layer parallelism); `gpipe` runs all microbatches forward, then all backward
#: (Huang et al. 2019); `1f1b` interleaves one forward and one backward per microbatch once
#: the pipeline is full (PipeDream-Flush, Narayanan et al. 2021): the same bubble as GPipe,
#: fewer microbatches' activations kept. `auto`: timestep for recurrent graphs, else 1f1b.
SCHEDULES = ("auto", "timestep", "gpipe", "1f1b")

#: Tensor roles a plan may keep in host memory (ZeRO-Offload's optimizer state, weights
#: streamed per layer, activations swapped out between forward and backward).
OFFLOADABLE = ("optimizer_state", "weights", "activations")

#: Ceilings (docs/spec-format.md, "Limits"): a degree or microbatch count beyond these is no
#: system, and products of them stay far below 2**63.
MAX_DEGREE = 2**20        # chips along one parallel dimension
MAX_MICROBATCHES = 2**24  # as many as a subbatch has examples (workload.MAX_SUBBATCH)
MAX_STAGE_LAYERS = 2**14  # layers of one stage (workload.MAX_DEPTH)

#: Short names accepted on the command line (`--plan dp=512,pp=4,tp=1`).
CLI_ALIASES = {"dp": "data", "pp": "pipeline", "tp": "tensor"}


@attrs.frozen
class ParallelPlan:
    """Degrees of data, pipeline (layer) and tensor parallelism, and what is sharded."""

    data: int | None = field(
        default=None, minimum=1, maximum=MAX_DEGREE,
        doc="data-parallel replicas, each on `subbatch` examples (none: the chips left over "
            "by the other degrees)")
    pipeline: int = field(default=1, minimum=1, maximum=MAX_DEGREE,
                          doc="pipeline (layer-parallel) stages: contiguous groups of layers")
    tensor: int = field(default=1, minimum=1, maximum=MAX_DEGREE,
                        doc="tensor-parallel chips per stage (Megatron-style split GEMMs)")
    stages: tuple[int, ...] | None = field(
        default=None, doc="layers per pipeline stage, in order (none: the split whose largest "
                          "stage holds the fewest weight bytes, then does the fewest FLOPs)")
    schedule: str = field(default="auto", choices=SCHEDULES, doc="pipeline schedule")
    microbatches: int | None = field(
        default=None, minimum=1, maximum=MAX_MICROBATCHES,
        doc="microbatches per step for gpipe/1f1b (none: 4 per stage, at most the subbatch)")
    shard_embedding: bool = field(
        default=False, doc="split the embedding table's rows over the chips of a replica")
    offload: tuple[str, ...] = field(
        factory=tuple, doc=f"tensor roles kept in host memory over the host link, among "
                           f"{list(OFFLOADABLE)} (none: all on the chip)")

    def __attrs_post_init__(self) -> None:
        check_rules(self)

    @rule
    def _stages_match(pipeline: int, stages: tuple[int, ...] | None) -> Violation | None:
        """An explicit assignment gives every stage at least one layer."""
        if stages is not None:
            if len(stages) != pipeline:
                return Violation("stages", f"{pipeline} entries (one per pipeline stage)",
                                 f"{len(stages)}")
            if min(stages) < 1 or max(stages) > MAX_STAGE_LAYERS:
                return Violation("stages", f"from 1 to {MAX_STAGE_LAYERS} layers per stage",
                                 str(list(stages)))
        return None

    @rule
    def _offload_known(offload: tuple[str, ...]) -> Violation | None:
        """Only these roles can live in host memory."""
        for i, role in enumerate(offload):
            if role not in OFFLOADABLE:
                return Violation("offload", f"one of {list(OFFLOADABLE)}", repr(role), at=(i,))
        return None

    @property
    def model_chips(self) -> int:
        """Chips that hold one replica of the model."""
        return self.pipeline * self.tensor

    def chips(self) -> int:
        """All chips of the plan (the data degree must be known)."""
        return (self.data or 1) * self.model_chips

    def resolve(self, chips: int | None, source: str = "plan") -> ParallelPlan:
        """The plan with its data degree filled in from `chips` (checked to divide evenly)."""
        if chips is None:
            return self if self.data is not None else attrs.evolve(self, data=1)
        if self.data is None:
            if chips % self.model_chips:
                raise AccelsimError(
                    f"{source}: pipeline x tensor = {self.pipeline} x {self.tensor} = "
                    f"{self.model_chips} does not divide --chips {chips}")
            return attrs.evolve(self, data=chips // self.model_chips)
        if self.chips() != chips:
            raise AccelsimError(
                f"{source}: data x pipeline x tensor = {self.data} x {self.pipeline} x "
                f"{self.tensor} = {self.chips()} chips, but --chips is {chips}")
        return self

    def label(self) -> str:
        """Short text such as 'dp=512 pp=4 tp=1 +shard'."""
        text = f"dp={self.data or 1} pp={self.pipeline} tp={self.tensor}"
        if self.stages is not None and self.pipeline > 1:
            text += f" stages={'/'.join(map(str, self.stages))}"
        text += " +shard" if self.shard_embedding else ""
        return text + "".join(f" +offload:{r}" for r in self.offload)


def data_parallel(chips: int) -> ParallelPlan:
    """`--chips N` alone: N data-parallel replicas."""
    return ParallelPlan(data=chips)


def cli_plan_data(text: str) -> dict[str, Any]:
    """`dp=512,pp=4,tp=1,shard_embedding=true` as plain data for the spec loader.

    Values stay text (`spec.Verbatim`-like strings are made by the caller), so the loader judges
    them exactly as it would in a file.
    """
    data: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise AccelsimError(f"--plan {text}: expected KEY=VALUE items separated by commas "
                                f"(e.g. dp=512,pp=4,tp=1), got {part!r}")
        key = CLI_ALIASES.get(key.strip(), key.strip())
        if key in data:
            raise AccelsimError(f"--plan {text}: {key} is given twice")
        value = value.strip()
        if key in ("stages", "offload"):
            data[key] = [v for v in value.split("/")]
        else:
            data[key] = value
    return data


def model_limits(model: Any) -> dict[str, int]:
    """Sizes a plan must respect, read from a model config by name (absent ones skipped)."""
    out = {}
    for name in ("hidden", "width", "heads", "ffn", "layers", "projection"):
        value = getattr(model, name, None)
        if isinstance(value, int):
            out[name] = value
    return out


def plan_violation(plan: ParallelPlan, model: Any) -> Violation | None:
    """Where `plan` cannot split `model`: tensor degree vs hidden size and heads."""
    limits = model_limits(model)
    for name in ("hidden", "width", "heads", "ffn", "projection"):
        if name in limits and limits[name] % plan.tensor:
            return Violation("parallel", f"a tensor degree that divides the model's {name} "
                             f"({limits[name]})", str(plan.tensor), at=("tensor",))
    return None


__all__ = ["CLI_ALIASES", "OFFLOADABLE", "SCHEDULES", "ParallelPlan", "cli_plan_data", "data_parallel",
           "model_limits", "plan_violation"]
